"""Allow `python -m tnoctl`."""

import sys

from tnoctl.cli import main

sys.exit(main())
