"""Tests of exploy-dsl."""
