"""``python -m shipper``: see ``shipper.cli``."""

import sys

from shipper.cli import main

sys.exit(main())
