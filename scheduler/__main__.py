"""``python -m scheduler``: run the scheduler, or manage schedules (``--help``)."""

import sys

from scheduler.cli import main

sys.exit(main())
