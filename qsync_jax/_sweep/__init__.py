"""Parameter sweeps: :func:`sweep` (axes and batched models, execution over devices, labels and
the Dataset, checkpoints — one module each)."""

from ._driver import sweep as sweep
