"""``python -m portable_dl`` runs the ``portable-dl`` command."""

import sys

from .cli import main

sys.exit(main())
