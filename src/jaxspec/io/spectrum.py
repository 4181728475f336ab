"""The one spectrum object every jaxspec reader returns, and constructors from arrays and specutils.

Conventions (see DESIGN.md): wavelengths in Angstrom, vacuum, strictly increasing; ``ivar = 0``
marks a masked pixel; flux values are always finite (masked non-finite flux is stored as 0).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

__all__ = ["Spectrum", "SpectrumFormatError", "from_arrays", "from_specutils", "clean_pixels"]


class SpectrumFormatError(ValueError):
    """A file could not be read as a spectrum: not FITS, truncated, unknown layout, missing HDU/column.

    The message always names the file and what is wrong, so that a survey run can record it as is.
    """


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """One observed spectrum on its own wavelength grid.

    Attributes
    ----------
    wave : (P,) float64 ndarray
        Vacuum wavelengths [Angstrom], finite and strictly increasing.
    flux : (P,) float64 ndarray
        Flux (units as the file gives them; ``meta["flux_unit"]`` when known). Always finite.
    ivar : (P,) float64 ndarray
        Inverse variance of ``flux`` [1 / flux unit^2], finite and >= 0; 0 marks a masked pixel.
    id : str
        Object identifier (header OBJID / APOGEE_ID / OBSID, else the file stem).
    resolution : float or None
        Resolving power lambda / delta-lambda when the format states or implies it, else None.
    meta : dict
        JSON-able scalars (format, path, snr, mjd, air_converted, HDU names, ...).

    The arrays are copied to float64 and made read-only.

    Raises
    ------
    ValueError
        When the arrays are not 1-D of one common length P >= 1, when ``wave`` is not finite and
        strictly increasing, when ``flux`` is not finite, or when ``ivar`` is negative or not finite.
    """

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    id: str
    resolution: float | None = None
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        arrays = {}
        for name in ("wave", "flux", "ivar"):
            try:
                a = np.array(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"Spectrum.{name} is not a numeric array: {exc}") from exc
            if a.ndim != 1:
                raise ValueError(f"Spectrum.{name} must be 1-D (P,), got shape {a.shape}")
            arrays[name] = a
        p = arrays["wave"].size
        if p == 0:
            raise ValueError("Spectrum has no pixels (wave is empty)")
        for name in ("flux", "ivar"):
            if arrays[name].size != p:
                raise ValueError(f"Spectrum.{name} has {arrays[name].size} pixels but wave has {p}")
        wave, flux, ivar = arrays["wave"], arrays["flux"], arrays["ivar"]
        if not np.all(np.isfinite(wave)):
            raise ValueError(f"Spectrum.wave has {int(np.sum(~np.isfinite(wave)))} non-finite values")
        if p > 1 and not np.all(np.diff(wave) > 0):
            bad = int(np.argmin(np.diff(wave)))
            raise ValueError(
                f"Spectrum.wave is not strictly increasing (pixel {bad}: {wave[bad]!r} -> {wave[bad + 1]!r});"
                " use from_arrays() to sort descending input"
            )
        if not np.all(np.isfinite(flux)):
            raise ValueError(
                f"Spectrum.flux has {int(np.sum(~np.isfinite(flux)))} non-finite values;"
                " use from_arrays() to mask them"
            )
        if not np.all(np.isfinite(ivar)) or np.any(ivar < 0):
            raise ValueError("Spectrum.ivar must be finite and >= 0 (0 = masked)")
        for name, a in arrays.items():
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        object.__setattr__(self, "id", str(self.id))
        if self.resolution is not None:
            r = float(self.resolution)
            if not np.isfinite(r) or r <= 0:
                raise ValueError(
                    f"Spectrum.resolution must be a positive number or None, got {self.resolution!r}"
                )
            object.__setattr__(self, "resolution", r)
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def npix(self) -> int:
        """Number of pixels P."""
        return int(self.wave.size)

    @property
    def err(self) -> np.ndarray:
        """(P,) 1-sigma uncertainty in flux units, ``1 / sqrt(ivar)``; ``inf`` where masked."""
        with np.errstate(divide="ignore"):
            return np.where(self.ivar > 0, 1.0 / np.sqrt(self.ivar), np.inf)

    @property
    def good(self) -> np.ndarray:
        """(P,) bool, True where the pixel is usable (``ivar > 0``)."""
        return self.ivar > 0

    def __len__(self) -> int:
        return self.npix

    def to_dict(self) -> dict[str, Any]:
        """Plain dict: ``wave``, ``flux``, ``ivar`` (float64 arrays), ``id``, ``resolution``, ``meta``."""
        return {
            "wave": np.array(self.wave),
            "flux": np.array(self.flux),
            "ivar": np.array(self.ivar),
            "id": self.id,
            "resolution": self.resolution,
            "meta": dict(self.meta),
        }

    def save_npz(self, path) -> None:
        """Write the spectrum to ``path`` (.npz; meta as a JSON string), readable with format="npz"."""
        np.savez(
            path,
            wave=self.wave,
            flux=self.flux,
            ivar=self.ivar,
            id=np.array(self.id),
            resolution=np.array(np.nan if self.resolution is None else self.resolution),
            meta=np.array(json.dumps(self.meta, default=str)),
        )


def clean_pixels(flux, err=None, ivar=None, mask=None, *, absurd_snr: float = 1e-4):
    """Turn flux and err/ivar/mask arrays into finite ``(flux, ivar)`` with ``ivar = 0`` where bad.

    Parameters
    ----------
    flux : (P,) array
    err, ivar : (P,) arrays, optional
        1-sigma error or inverse variance (at most one). With neither, every finite pixel gets
        ``ivar = 1``.
    mask : (P,) array, optional
        Truthy (bool, or nonzero integer) = bad pixel.
    absurd_snr : float
        Pixels whose error exceeds ``|median good flux| / absurd_snr`` (default 1e4 times the median
        flux) are masked: pipelines put 1e6-1e10 errors in chip gaps and unusable pixels (APOGEE),
        and such a pixel carries no information.

    Returns
    -------
    flux, ivar : (P,) float64 arrays; non-finite flux replaced by 0 and masked; non-finite, zero or
        negative error (or negative / non-finite ivar) masked.
    """
    flux = np.array(flux, dtype=np.float64).ravel()
    bad = ~np.isfinite(flux)
    if err is not None and ivar is not None:
        raise ValueError("give err or ivar, not both")
    if err is not None:
        err = np.array(err, dtype=np.float64).ravel()
        if err.shape != flux.shape:
            raise ValueError(f"err has shape {err.shape} but flux has {flux.shape}")
        bad |= ~np.isfinite(err) | (err <= 0)
        good_flux = np.abs(flux[~bad])
        if good_flux.size:
            scale = float(np.median(good_flux))
            if scale > 0:
                bad |= err > scale / absurd_snr
        with np.errstate(divide="ignore", invalid="ignore"):
            iv = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, err) ** 2)
    elif ivar is not None:
        iv = np.array(ivar, dtype=np.float64).ravel()
        if iv.shape != flux.shape:
            raise ValueError(f"ivar has shape {iv.shape} but flux has {flux.shape}")
        bad |= ~np.isfinite(iv) | (iv <= 0)
    else:
        iv = np.ones_like(flux)
    if mask is not None:
        m = np.asarray(mask).ravel()
        if m.shape != flux.shape:
            raise ValueError(f"mask has shape {m.shape} but flux has {flux.shape}")
        bad |= m.astype(bool)
    iv = np.where(bad, 0.0, iv)
    flux = np.where(np.isfinite(flux), flux, 0.0)
    return flux, iv


def from_arrays(
    wave,
    flux,
    err=None,
    ivar=None,
    *,
    id: str = "spectrum",
    mask=None,
    air: bool = False,
    resolution: float | None = None,
    meta: dict | None = None,
) -> Spectrum:
    """Build a :class:`Spectrum` from plain arrays.

    Parameters
    ----------
    wave : (P,) array
        Wavelengths [Angstrom]; any monotonic order (descending input is reversed, unordered input
        sorted). Air wavelengths when ``air=True`` (converted with
        :func:`jaxspec.physics.air_to_vacuum`; ``meta["air_converted"] = True``).
    flux : (P,) array
        Flux in any units (kept as given; normalized or not).
    err, ivar : (P,) arrays, optional
        1-sigma error [flux units] or inverse variance [1 / flux unit^2] (not both). With neither,
        unit weights are used and ``meta["ivar_assumed"] = True``.
    mask : (P,) array, optional
        True / nonzero = bad pixel (set to ``ivar = 0``).
    id : str
        Object identifier.
    air : bool
        True when ``wave`` is in air (see ``wave``).
    resolution : float or None
        Resolving power lambda / delta-lambda of the spectrum, if known.
    meta : dict, optional
        Extra JSON-able scalars for :attr:`Spectrum.meta`.

    Non-finite flux or error, and zero or negative error, become ``ivar = 0`` (flux set to 0).

    Raises
    ------
    ValueError
        On shape mismatch, both err and ivar given, non-finite or repeated wavelengths.
    """
    w = np.array(wave, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"wave must be 1-D, got shape {w.shape}")
    for name, a in (("flux", flux), ("err", err), ("ivar", ivar), ("mask", mask)):
        if a is not None and np.shape(a) != w.shape:
            raise ValueError(f"{name} has shape {np.shape(a)} but wave has {w.shape}")
    f, iv = clean_pixels(flux, err=err, ivar=ivar, mask=mask)
    meta = dict(meta or {})
    if err is None and ivar is None:
        meta["ivar_assumed"] = True
    if not np.all(np.isfinite(w)):
        raise ValueError(f"wave has {int(np.sum(~np.isfinite(w)))} non-finite values")
    if w.size > 1 and not np.all(np.diff(w) > 0):
        order = np.argsort(w, kind="stable")
        w, f, iv = w[order], f[order], iv[order]
        meta.setdefault("sorted", True)
    if air:
        from jaxspec.physics.airvac import air_to_vacuum

        w = np.asarray(air_to_vacuum(w), dtype=np.float64)
    meta["air_converted"] = bool(air)
    return Spectrum(wave=w, flux=f, ivar=iv, id=id, resolution=resolution, meta=meta)


def _uncertainty_to_ivar(unc, flux_unit):
    """astropy NDUncertainty (std, variance, inverse variance) -> ivar array in flux units^-2."""
    kind = type(unc).__name__
    arr = np.asarray(unc.array, dtype=np.float64)
    unit = getattr(unc, "unit", None)
    if kind == "StdDevUncertainty":
        if unit is not None and flux_unit is not None:
            arr = arr * unit.to(flux_unit)
        with np.errstate(divide="ignore"):
            return np.where((arr > 0) & np.isfinite(arr), 1.0 / np.where(arr > 0, arr, 1.0) ** 2, 0.0)
    if kind == "VarianceUncertainty":
        if unit is not None and flux_unit is not None:
            arr = arr * unit.to(flux_unit**2)
        with np.errstate(divide="ignore"):
            return np.where((arr > 0) & np.isfinite(arr), 1.0 / np.where(arr > 0, arr, 1.0), 0.0)
    if kind == "InverseVariance":
        if unit is not None and flux_unit is not None:
            arr = arr * unit.to(flux_unit**-2)
        return arr
    raise ValueError(f"unsupported uncertainty type {kind}; use StdDevUncertainty, VarianceUncertainty "
                     "or InverseVariance")


def from_specutils(spec1d, id: str | None = None) -> Spectrum:
    """Convert a 1-D ``specutils.Spectrum`` (or ``Spectrum1D``) into a :class:`Spectrum`.

    The spectral axis is converted to Angstrom (wavelength, frequency or energy units are all
    accepted through astropy's spectral equivalencies) and assumed vacuum, as specutils does; the
    uncertainty (StdDev, Variance or InverseVariance) becomes ``ivar`` in the flux's unit; the
    specutils mask (True = bad) becomes ``ivar = 0``. ``id`` defaults to ``meta["id"]`` /
    ``meta["name"]`` of the specutils object, else "spectrum".

    Parameters
    ----------
    spec1d : specutils.Spectrum or specutils.Spectrum1D
        A 1-D spectrum: (P,) flux with any astropy unit (kept in its unit, recorded in
        ``meta["flux_unit"]``) on a spectral axis of (P,) values.
    id : str, optional
        Object identifier (default as above).

    Returns
    -------
    Spectrum
        Vacuum wavelengths [Angstrom], increasing.

    Raises
    ------
    ValueError
        For a multi-dimensional flux or an unsupported uncertainty type.
    """
    import astropy.units as u

    flux_q = spec1d.flux
    flux = np.asarray(flux_q.value, dtype=np.float64)
    if flux.ndim != 1:
        raise ValueError(f"from_specutils needs a 1-D spectrum, got flux shape {flux.shape}")
    wave = np.asarray(spec1d.spectral_axis.to(u.AA, equivalencies=u.spectral()).value, dtype=np.float64)
    ivar = None
    if spec1d.uncertainty is not None:
        ivar = _uncertainty_to_ivar(spec1d.uncertainty, flux_q.unit)
    mask = None if spec1d.mask is None else np.asarray(spec1d.mask, dtype=bool)
    smeta = getattr(spec1d, "meta", None) or {}
    if id is None:
        id = str(smeta.get("id", smeta.get("name", "spectrum")))
    meta = {"format": "specutils", "flux_unit": flux_q.unit.to_string()}
    return from_arrays(wave, flux, ivar=ivar, mask=mask, id=id, meta=meta)
