"""``python -m compiler.cli``: the ``exploy-dsl`` command."""

import sys

from compiler.cli._main import main

sys.exit(main())
