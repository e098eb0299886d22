"""Deployment: step a compiled file as a robot loop does (needs only numpy and onnxruntime)."""
