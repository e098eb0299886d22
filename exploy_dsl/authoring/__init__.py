"""Authoring: the Program builder, ports, the robot vocabulary, stage tracing."""
