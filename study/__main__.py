"""``python -m study``: the command-line interface."""

import sys

try:
    from study.cli import main
except KeyboardInterrupt:  # a Ctrl-C while Python loads the command line
    print("study: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
