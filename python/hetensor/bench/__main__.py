"""``python -m hetensor.bench``: see ``python -m hetensor.bench --help``."""

import sys

from .cli import main

sys.exit(main())
