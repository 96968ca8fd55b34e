"""Parameter sets of the papers, defined once.

``MARI2013_FIG2`` — the optomechanical pair of Fig. 2 of Mari et al., PRL 111, 103605 (2013),
with ω₁ = 1 as the unit of frequency: ω = (1, 1.005), κ = 0.15, γ = 0.005, g = 0.005, μ = 0.02,
n_th = 0 and Δ_j = ω_j (the default detuning). The drive is **E = 48**: the caption's
"E = 320" is E/κ (48/0.15 = 320), the only reading that gives the limit cycles of radius
≈ 500 of footnote [36] (docs/physics-notes.md). Use it as
``qs.optomechanical_pair(**qs.MARI2013_FIG2)`` and override entries with a dict merge,
``qs.optomechanical_pair(**{**qs.MARI2013_FIG2, "mu": 0.0})``; a uniform ring of these sites,
``qs.optomechanical_ring(20, **{**qs.MARI2013_FIG2, "omega": 1.0})``.
"""

from collections.abc import Iterator, Mapping


class ParameterSet(Mapping):
    """A read-only set of constructor keywords: ``constructor(**preset)``; merge to override."""

    def __init__(self, doc: str, **values):
        self._values = dict(values)
        self.__doc__ = doc

    def __getitem__(self, key: str):
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ParameterSet({self._values!r})"


MARI2013_FIG2 = ParameterSet(
    "Fig. 2 of Mari et al. (2013): keywords of :func:`qsync_jax.optomechanical_pair` (read-only; "
    "E = 48 is the caption's E/κ = 320; module :mod:`qsync_jax._models.presets`).",
    omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02, n_th=0.0,
)
"""Fig. 2 of Mari et al. (2013): keywords of :func:`qsync_jax.optomechanical_pair` (read-only;
E = 48 is the caption's E/κ = 320, module docstring)."""
