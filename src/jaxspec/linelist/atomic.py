"""Atomic data tables shipped with jaxspec, and partition-function lookup.

The tables live in ``jaxspec/data/atomic_tables.npz``, written by
``scripts/build_atomic_data.py`` from the public files described in
``shared/data/atomic/README.md`` (that script's docstring lists every choice:
sources, temperature grid, how Barklem & Collet 2016 is extended above
10^4 K, fill values). Element index ``z_index = Z - 1`` (0 = H ... 91 = U);
stage index ``ion`` = 0, 1, 2 for neutral, singly and doubly ionized.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
from collections.abc import Mapping

import numpy as np

__all__ = ["AtomicTables", "load_atomic_tables", "partition_function", "N_ELEMENTS"]

N_ELEMENTS = 92
_DATA_FILE = "atomic_tables.npz"


@dataclasses.dataclass(frozen=True)
class AtomicTables:
    """Per-element and per-species atomic data (read-only numpy arrays).

    Attributes:
        log_t_grid: (n_T,) natural log of temperature [ln K], uniform spacing.
        partition: (92, 3, n_T) partition functions Q for Z = 1..92 and stages
            I, II, III on ``log_t_grid``; 1.0 where unknown (see
            ``partition_known``).
        partition_known: (92, 3) bool, whether ``partition`` holds real data for
            that species. Lines of unknown species should be refused or skipped.
        ionization_energy: (92, 3) first, second, third ionization energy [eV]
            (I->II, II->III, III->IV); NaN where it does not exist (H II).
        atomic_mass: (92,) standard atomic weight [amu].
        solar_abundance: (92,) A(X) = log10(N_X / N_H) + 12, Asplund et al. 2021;
            NaN where neither a photospheric nor a meteoritic value exists.
        solar_abundance_source: (92,) 'photosphere', 'meteorites' or 'none'.
        elements: (92,) element symbols.
        sources: (k,) citations of the data sources.
    """

    log_t_grid: np.ndarray
    partition: np.ndarray
    partition_known: np.ndarray
    ionization_energy: np.ndarray
    atomic_mass: np.ndarray
    solar_abundance: np.ndarray
    solar_abundance_source: np.ndarray
    elements: np.ndarray
    sources: np.ndarray

    @classmethod
    def from_mapping(cls, arrays: Mapping[str, np.ndarray]) -> AtomicTables:
        """Build from a mapping of arrays (an open ``.npz`` or the build script's dict).

        Raises ``ValueError`` when a field is missing or has the wrong shape.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in arrays]
        if missing:
            raise ValueError(f"atomic tables lack the arrays {missing}")
        out = {}
        for name in names:
            a = np.array(arrays[name])  # a private copy, then frozen
            a.setflags(write=False)
            out[name] = a
        n_t = out["log_t_grid"].shape[0]
        expected = {
            "partition": (N_ELEMENTS, 3, n_t),
            "partition_known": (N_ELEMENTS, 3),
            "ionization_energy": (N_ELEMENTS, 3),
            "atomic_mass": (N_ELEMENTS,),
            "solar_abundance": (N_ELEMENTS,),
            "solar_abundance_source": (N_ELEMENTS,),
            "elements": (N_ELEMENTS,),
        }
        for name, shape in expected.items():
            if out[name].shape != shape:
                raise ValueError(
                    f"atomic table {name!r} has shape {out[name].shape}, expected {shape}"
                )
        step = np.diff(out["log_t_grid"])
        if n_t < 2 or not np.allclose(step, step[0], rtol=1e-9, atol=0):
            raise ValueError("atomic tables: log_t_grid must be uniform with at least 2 points")
        return cls(**out)

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> AtomicTables:
        """Load tables from an ``.npz`` file (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as data:
            return cls.from_mapping({k: data[k] for k in data.files})

    def z_index(self, symbol: str) -> int:
        """Index into the element axis for an element symbol ('Fe' -> 25)."""
        hits = np.flatnonzero(self.elements == symbol)
        if hits.size != 1:
            raise KeyError(f"unknown element symbol {symbol!r}")
        return int(hits[0])


@functools.cache
def load_atomic_tables() -> AtomicTables:
    """The atomic tables shipped in ``jaxspec/data/atomic_tables.npz`` (cached).

    Raises:
        FileNotFoundError: the package data file is missing (rebuild it with
            ``python scripts/build_atomic_data.py``).
    """
    resource = importlib.resources.files("jaxspec").joinpath("data", _DATA_FILE)
    if not resource.is_file():
        raise FileNotFoundError(
            f"jaxspec/data/{_DATA_FILE} is missing; build it with "
            "`python scripts/build_atomic_data.py`"
        )
    with importlib.resources.as_file(resource) as path:
        return AtomicTables.from_npz(path)


def _get(tables, name):
    return tables[name] if isinstance(tables, Mapping) else getattr(tables, name)


def partition_function(tables, z_index, ion, temperature):
    """Partition functions Q of many species at one temperature.

    Linear interpolation of Q in ln T on the tables' uniform grid. Outside the
    grid (about 1000-30,700 K for the shipped tables) the value is clamped to
    the nearest end (so the derivative with respect to T is zero there); the
    line-forming layers of FGK stars lie well inside it.

    Works with numpy or jax inputs and inside ``jax.jit`` (the index
    arithmetic uses the uniform spacing, no search).

    Args:
        tables: ``AtomicTables`` or a mapping with ``log_t_grid`` (n_T,) and
            ``partition`` (92, 3, n_T) arrays.
        z_index: (n,) integer element index Z - 1 (0 = H, 25 = Fe).
        ion: (n,) integer stage, 0 = neutral, 1 = singly, 2 = doubly ionized.
        temperature: temperature [K], a scalar or an array broadcastable
            against ``z_index``.

    Returns:
        (n,) array of Q (dimensionless), in the dtype jax gives the tables
        (float32 by default).
    """
    import jax.numpy as jnp

    grid = jnp.asarray(_get(tables, "log_t_grid"))
    table = jnp.asarray(_get(tables, "partition"))
    n_t = grid.shape[0]
    step = (grid[-1] - grid[0]) / (n_t - 1)
    x = (jnp.log(jnp.asarray(temperature, dtype=grid.dtype)) - grid[0]) / step
    x = jnp.clip(x, 0.0, n_t - 1.0)
    i = jnp.clip(jnp.floor(x).astype(jnp.int32), 0, n_t - 2)
    frac = x - i
    z_index = jnp.asarray(z_index)
    ion = jnp.asarray(ion)
    q0 = table[z_index, ion, i]
    q1 = table[z_index, ion, i + 1]
    return q0 + frac * (q1 - q0)
