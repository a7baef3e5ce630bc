"""``python -m study``: the command-line interface."""

import sys

from study.cli import main

sys.exit(main())
