"""Check: parity of a compiled file with its program, tick by tick, and its report."""
