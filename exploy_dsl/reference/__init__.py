"""The reference interpreter: a program run tick by tick in NumPy, never from the file."""
