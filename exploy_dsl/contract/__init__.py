"""The file contract: wire names, the tick, metadata encodings, and the reader of a file."""
