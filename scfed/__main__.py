"""``python -m scfed`` runs the ``scfed`` command."""

import sys

from scfed.cli import main

sys.exit(main())
