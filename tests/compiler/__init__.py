"""Tests of the compiler package (stitching, metadata, CLI)."""
