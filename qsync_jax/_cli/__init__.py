"""The ``qsync`` command line (also ``python -m qsync_jax``).

Subcommands:

- ``qsync reproduce mari2013|bittner2025|all [--figure F] [--out DIR] [--quick]``: paper figures
  (PNG) plus the data behind each (NetCDF/JSON, with every parameter used).
- ``qsync simulate --model pair|ring|correlated-bath [options]``: one model; its parameters, the
  averaging window, window means and end-of-window values (or the steady state) as JSON.
- ``qsync sweep CONFIG.toml``: a parameter sweep described in a file, written as NetCDF.

Every failure (bad option or number, physics without a steady state, config, I/O) ends in one
line on stderr and exit code 2. Modules: :mod:`._parser` (options), :mod:`._main` (start-up,
errors), :mod:`._simulate`, :mod:`._reproduce`, :mod:`._sweep` (the subcommands),
:mod:`._sweep_config` (the TOML format), :mod:`._paths` (output checks).
"""

from ._main import main as main
