"""``python -m hetensor.remote serve MODEL`` (the same as the ``hetensor`` console script)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
