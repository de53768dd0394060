"""``python -m worker``: run the worker (``--help`` lists every flag and variable)."""

import sys

from worker.cli import main

sys.exit(main())
