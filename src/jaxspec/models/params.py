"""Parameter specifications: names, units, bounds, fixed values and transforms, in one place.

A :class:`ParamSpec` lists the parameters of a model once; the fitter, the
sampler and the result objects all read it, so nothing lists parameters
twice. Free parameters map to an unconstrained vector through a scaled
logistic transform, so optimizers can neither stick at nor cross a bound.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

__all__ = ["Param", "ParamSpec"]


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: name, unit, bounds (lower < upper) and an optional fixed value."""

    name: str
    unit: str
    lower: float
    upper: float
    fixed: float | None = None

    def __post_init__(self):
        if not (np.isfinite(self.lower) and np.isfinite(self.upper) and self.lower < self.upper):
            raise ValueError(f"parameter {self.name!r}: bounds must be finite with lower < upper, "
                             f"got ({self.lower}, {self.upper})")
        if self.fixed is not None and not (self.lower <= self.fixed <= self.upper):
            raise ValueError(f"parameter {self.name!r}: fixed value {self.fixed} lies outside "
                             f"[{self.lower}, {self.upper}]")


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """An ordered collection of :class:`Param`.

    Attributes:
        params: the parameters, in order.
    """

    params: tuple[Param, ...]

    def __post_init__(self):
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Names of all parameters (free and fixed), in order."""
        return tuple(p.name for p in self.params)

    @property
    def free(self) -> tuple[str, ...]:
        """Names of the free (not fixed) parameters, in order."""
        return tuple(p.name for p in self.params if p.fixed is None)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"no parameter {name!r}; parameters are {self.names}")

    def with_fixed(self, **values) -> ParamSpec:
        """A copy with some parameters fixed (``None`` frees one again).

        Args:
            **values: ``name=value`` in the parameter's unit (:attr:`Param.unit`),
                or ``name=None``.

        Raises:
            ValueError: an unknown parameter name.
        """
        unknown = set(values) - set(self.names)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; parameters are {self.names}")
        return ParamSpec(tuple(
            dataclasses.replace(p, fixed=values[p.name]) if p.name in values else p for p in self.params
        ))

    def bounds(self, names=None) -> np.ndarray:
        """(n, 2) lower and upper bounds of ``names`` (default: the free parameters)."""
        names = self.free if names is None else names
        return np.array([[self[n].lower, self[n].upper] for n in names], dtype=np.float64)

    def to_unconstrained(self, values: dict):
        """Vector of the free parameters mapped to the real line: ``logit((v - lo) / (hi - lo))``.

        Args:
            values: ``{name: value}`` with at least the free parameters, in
                their units; values at or beyond a bound are clipped just inside it.

        Returns:
            (F,) unconstrained vector, F = ``len(free)``, in :attr:`free` order.
        """
        lo, hi = (jnp.asarray(b) for b in self.bounds().T)
        v = jnp.stack([jnp.asarray(values[n]) for n in self.free])
        u = jnp.clip((v - lo) / (hi - lo), 1e-6, 1.0 - 1e-6)
        return jnp.log(u) - jnp.log1p(-u)

    def from_unconstrained(self, z) -> dict:
        """All parameters as a dict from an unconstrained vector of the free ones (fixed ones filled in).

        Args:
            z: (F,) unconstrained values of the free parameters, in :attr:`free`
                order (the inverse of :meth:`to_unconstrained`).

        Returns:
            ``{name: value}`` for every parameter, in its unit, inside its bounds.
        """
        lo, hi = (jnp.asarray(b) for b in self.bounds().T)
        v = lo + (hi - lo) * (1.0 / (1.0 + jnp.exp(-z)))
        out = {n: v[i] for i, n in enumerate(self.free)}
        for p in self.params:
            if p.fixed is not None:
                out[p.name] = jnp.asarray(p.fixed, dtype=v.dtype)
        return out

    def check(self, values: dict) -> None:
        """Raise ``ValueError`` if a value is missing, non-finite or outside its bounds (concrete values)."""
        for p in self.params:
            if p.name not in values:
                raise ValueError(f"missing parameter {p.name!r}")
            v = np.asarray(values[p.name])
            if not np.all(np.isfinite(v)):
                raise ValueError(f"parameter {p.name!r} is not finite: {v}")
            if np.any(v < p.lower) or np.any(v > p.upper):
                raise ValueError(f"parameter {p.name!r} = {v} lies outside [{p.lower}, {p.upper}] {p.unit}")
