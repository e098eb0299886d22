"""The deployment library: the pieces every deployment re-writes, as primitives on spox Vars."""
