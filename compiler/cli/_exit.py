"""Exit codes shared by every subcommand."""

EXIT_OK = 0  # success; for check/diff: parity holds / nothing breaks
EXIT_FAIL = 1  # check: parity fails; diff: a breaking difference
EXIT_USAGE = 2  # a user error (bad arguments, bad program, bad file)
