"""Tests of the exploy_dsl package (authoring, tracing, runtime)."""
