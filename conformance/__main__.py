"""``python -m portable_dl.conformance``: the same as ``portable-dl conformance``."""

import sys

from .cli import main

sys.exit(main())
