"""``python -m qsync_jax`` runs the ``qsync`` command."""

import sys

from ._cli import main

sys.exit(main())
