"""``python -m qsync_jax._cli`` runs the ``qsync`` command."""

import sys

from ._main import main

sys.exit(main())
