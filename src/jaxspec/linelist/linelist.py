"""The line list: a pytree of per-line atomic data."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

__all__ = ["LineList", "ELEMENT_SYMBOLS", "species_name"]

ELEMENT_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn "
    "Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce "
    "Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn "
    "Fr Ra Ac Th Pa U"
).split()

_ROMAN = ("I", "II", "III", "IV")

# Sources of individual lines (LineList.source).
SOURCE_VALD = 0
SOURCE_GES = 1
SOURCE_OTHER = 2


def species_name(z: int, ion: int) -> str:
    """'Fe I' style name for atomic number ``z`` and ionization stage ``ion`` (0 = neutral)."""
    return f"{ELEMENT_SYMBOLS[int(z) - 1]} {_ROMAN[int(ion)]}"


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LineList:
    """Atomic line data, one entry per line (all arrays have shape ``(n_lines,)``).

    Attributes:
        wave: vacuum wavelength [Angstrom], float64.
        z: atomic number (1 = H, 26 = Fe).
        ion: ionization stage, 0 = neutral, 1 = singly ionized, 2 = doubly ionized.
        chi: lower-level excitation energy [eV].
        loggf: log10 of the oscillator strength times lower-level statistical weight.
        log_gamma_rad: log10 radiative damping [s^-1]; NaN when the source gives none.
        log_gamma_stark: log10 (Stark damping / electron density) [s^-1 cm^3] at 10^4 K;
            NaN when none is given.
        vdw: van der Waals parameter in the VALD convention: a negative value is
            log10(gamma_6 / N_H) [s^-1 cm^3] at 10^4 K; a value >= 20 is a packed
            Anstee-Barklem-O'Mara pair sigma.alpha (sigma in a0^2, alpha the velocity
            exponent); NaN when none is given. For hydrogen lines the field holds
            the upper principal quantum number as given by VALD.
        source: where the line comes from (0 = VALD3, 1 = Gaia-ESO v5, 2 = other).

    A ``LineList`` is a pytree, so it can be passed through ``jax.jit``; the
    spectral generator turns it into fixed-shape arrays once, at construction.
    """

    wave: np.ndarray
    z: np.ndarray
    ion: np.ndarray
    chi: np.ndarray
    loggf: np.ndarray
    log_gamma_rad: np.ndarray
    log_gamma_stark: np.ndarray
    vdw: np.ndarray
    source: np.ndarray

    @classmethod
    def from_arrays(cls, **arrays) -> LineList:
        """Build and validate a line list from 1-D arrays (see class docstring).

        ``log_gamma_rad``, ``log_gamma_stark``, ``vdw`` default to NaN (not given)
        and ``source`` to 2 (other). Raises ``ValueError`` on shape mismatch,
        non-finite wavelengths, log gf or energies, or unknown species.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = set(arrays) - set(names)
        if unknown:
            raise ValueError(f"unknown line-list fields: {sorted(unknown)}")
        n = len(np.atleast_1d(arrays["wave"]))
        defaults = {
            "log_gamma_rad": np.full(n, np.nan),
            "log_gamma_stark": np.full(n, np.nan),
            "vdw": np.full(n, np.nan),
            "source": np.full(n, SOURCE_OTHER),
        }
        out = {}
        for name in names:
            if name in arrays:
                value = arrays[name]
            elif name in defaults:
                value = defaults[name]
            else:
                raise ValueError(f"line list is missing the field {name!r}")
            out[name] = np.atleast_1d(np.asarray(value))
        ll = cls(
            wave=out["wave"].astype(np.float64),
            z=out["z"].astype(np.int32),
            ion=out["ion"].astype(np.int32),
            chi=out["chi"].astype(np.float64),
            loggf=out["loggf"].astype(np.float64),
            log_gamma_rad=out["log_gamma_rad"].astype(np.float64),
            log_gamma_stark=out["log_gamma_stark"].astype(np.float64),
            vdw=out["vdw"].astype(np.float64),
            source=out["source"].astype(np.int8),
        )
        ll.validate()
        return ll

    def validate(self) -> None:
        """Raise ``ValueError`` if arrays differ in shape or hold invalid entries."""
        n = self.wave.shape
        for f in dataclasses.fields(self):
            a = getattr(self, f.name)
            if np.shape(a) != n or np.ndim(a) != 1:
                raise ValueError(
                    f"line list field {f.name!r} has shape {np.shape(a)}, expected {n} "
                    "(all fields must be 1-D of the same length)"
                )
        for name in ("wave", "chi", "loggf"):
            a = np.asarray(getattr(self, name))
            bad = ~np.isfinite(a)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"line list has {int(bad.sum())} non-finite {name!r} entries (first at index {i})"
                )
        if np.any(np.asarray(self.wave) <= 0):
            raise ValueError("line list has non-positive wavelengths")
        z = np.asarray(self.z)
        if np.any((z < 1) | (z > len(ELEMENT_SYMBOLS))):
            raise ValueError("line list has atomic numbers outside 1..92 (molecules are not supported)")
        ion = np.asarray(self.ion)
        if np.any((ion < 0) | (ion > 2)):
            raise ValueError("line list has ionization stages outside 0..2")

    def __len__(self) -> int:
        return int(np.shape(self.wave)[0])

    def select(self, mask) -> LineList:
        """A new line list with the lines where ``mask`` (bool or index array) selects."""
        return LineList(
            **{f.name: np.asarray(getattr(self, f.name))[mask] for f in dataclasses.fields(self)}
        )

    def in_range(self, wave_min: float, wave_max: float) -> LineList:
        """Lines with ``wave_min <= wave <= wave_max``.

        Args:
            wave_min, wave_max: vacuum wavelength range [A], inclusive.

        Returns:
            A new :class:`LineList` of those lines, in their order here.
        """
        w = np.asarray(self.wave)
        return self.select((w >= wave_min) & (w <= wave_max))

    def sorted(self) -> LineList:
        """The same lines sorted by wavelength."""
        return self.select(np.argsort(np.asarray(self.wave), kind="stable"))

    @staticmethod
    def concatenate(lists) -> LineList:
        """Join several line lists (not re-sorted)."""
        return LineList(
            **{
                f.name: np.concatenate([np.asarray(getattr(x, f.name)) for x in lists])
                for f in dataclasses.fields(LineList)
            }
        )

    def species(self) -> list[str]:
        """Species name of every line ('Fe I', 'Mg I', 'Ti II', ...)."""
        return [species_name(z, i) for z, i in zip(np.asarray(self.z), np.asarray(self.ion), strict=True)]

    def __repr__(self) -> str:
        n = len(self)
        if n == 0:
            return "LineList(0 lines)"
        w = np.asarray(self.wave)
        return f"LineList({n} lines, {w.min():.2f}-{w.max():.2f} A vacuum)"
