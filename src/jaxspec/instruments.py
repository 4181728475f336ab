"""Instrument presets: what a survey's spectra need that the arrays alone do not say.

A preset names an instrument's nominal resolving power, its wavelength reach and the
continuum degree per segment (CCD, arm, chip) that suits its spectra. ``instrument=`` in
:func:`jaxspec.fit_binary` (and ``jaxspec fit --instrument``) uses the preset's resolution when
none is given and its continuum degree when ``continuum_degree`` is not given, and checks that
the spectrum lies inside the instrument's reach. Files whose reader knows the instrument
(:func:`detect_instrument`: APOGEE, LAMOST MRS and LRS, GALAH, SDSS/BOSS) are checked against a
preset the user names: a contradiction is an error, never a silent choice. Segments themselves
come from the wavelengths (gaps; a GALAH star's four CCD files are read as four segments).

Resolving powers: GALAH/HERMES 28,000 (Sheinis et al. 2015; DR4 files carry their own profile,
median ~21,500, which the reader uses); LAMOST MRS 7,500 and LRS 1,800 (Cui et al. 2012; Liu et
al. 2020); SDSS/BOSS ~2,000 (Smee et al. 2013; spec files carry wdisp, which the reader uses);
HARPS 115,000 (Mayor et al. 2003); FEROS 48,000 (Kaufer et al. 1999); UVES 40,000 as a middle
slit value (Dekker et al. 2000); SALT HRS medium resolution 40,000 (Bramall et al. 2010). APOGEE (R ~22,500, Wilson et al. 2019)
has no resolution here: its models hold the instrument's LSF.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["INSTRUMENTS", "Instrument", "check_instrument", "detect_instrument"]


@dataclasses.dataclass(frozen=True)
class Instrument:
    """One instrument preset.

    Attributes:
        name: the preset's name (``instrument=`` value).
        description: in words.
        resolution: nominal resolving power lambda / FWHM, a scalar (not per pixel, shape ());
            None where the instrument's models already hold its line-spread function (APOGEE's
            networks are trained on APOGEE spectra: no second LSF).
        reach: (min, max) vacuum wavelength [A] its spectra can span.
        continuum_degree: Chebyshev degree of the continuum per segment, or ``"auto"`` (chosen per
            segment by the BIC: echelle spectrographs, whose orders often come with the blaze).
        formats: reader formats (:data:`jaxspec.io.read.FORMATS`) that are this instrument's files.
    """

    name: str
    description: str
    resolution: float | None
    reach: tuple[float, float]
    continuum_degree: int | str
    formats: tuple[str, ...] = ()


#: The presets, ``{name: Instrument}``.
INSTRUMENTS = {i.name: i for i in (
    Instrument("galah", "GALAH / AAT HERMES, four CCDs", 28000.0, (4700.0, 7900.0), 2, ("galah_dr3", "galah_dr4")),
    Instrument("lamost-mrs", "LAMOST medium resolution, blue and red arms", 7500.0, (4900.0, 6850.0), 2,
               ("lamost_mrs",)),
    Instrument("lamost-lrs", "LAMOST low resolution", 1800.0, (3650.0, 9150.0), 4, ("lamost_lrs",)),
    Instrument("sdss", "SDSS / BOSS spectrographs", 2000.0, (3550.0, 10400.0), 4),
    Instrument("harps", "ESO HARPS", 115000.0, (3780.0, 6920.0), "auto"),
    Instrument("feros", "ESO FEROS", 48000.0, (3500.0, 9200.0), "auto"),
    Instrument("uves", "ESO UVES", 40000.0, (3000.0, 11000.0), "auto"),
    Instrument("salt-hrs", "SALT HRS, medium resolution", 40000.0, (3700.0, 8900.0), "auto"),
    Instrument("apogee", "SDSS APOGEE, three chips", None, (15100.0, 17000.0), 2,
               ("apstar", "apvisit", "aspcapstar")),
)}


def detect_instrument(meta: dict) -> str | None:
    """The preset a file's reader identified (from ``Spectrum.meta``), or None.

    Args:
        meta: a :class:`~jaxspec.io.Spectrum`'s ``meta`` (its ``format``; a FITS table with
            ``resolution_source == "wdisp"`` is SDSS/BOSS).
    """
    fmt = meta.get("format")
    for inst in INSTRUMENTS.values():
        if fmt in inst.formats:
            return inst.name
    if fmt == "fits_table" and meta.get("resolution_source") == "wdisp":
        return "sdss"
    return None


def check_instrument(name: str, wave, *, detected: str | None = None, tolerance: float = 0.002) -> Instrument:
    """The preset ``name``, checked against a spectrum.

    Args:
        name: a key of :data:`INSTRUMENTS`.
        wave: (P,) vacuum wavelengths [A] of the spectrum.
        detected: the instrument its file was identified as (:func:`detect_instrument`), if any.
        tolerance: fractional slack on the preset's reach.

    Returns:
        The :class:`Instrument`.

    Raises:
        ValueError: an unknown name (the presets listed); the file is another instrument's; the
            spectrum reaches outside the instrument's range (both ranges named).
    """
    if name not in INSTRUMENTS:
        raise ValueError(f"unknown instrument {name!r}; presets: {', '.join(INSTRUMENTS)}")
    inst = INSTRUMENTS[name]
    if detected is not None and detected != name:
        raise ValueError(f"instrument={name!r} contradicts the file, which is a {INSTRUMENTS[detected].description} "
                         f"spectrum ({detected!r}); give instrument={detected!r} or none")
    w = np.asarray(wave, dtype=np.float64)
    w = w[np.isfinite(w)]
    lo, hi = inst.reach
    if w.size and (w.min() < lo * (1 - tolerance) or w.max() > hi * (1 + tolerance)):
        raise ValueError(f"instrument={name!r} contradicts the spectrum: {inst.description} reaches "
                         f"{lo:.0f}-{hi:.0f} A, the spectrum spans {w.min():.0f}-{w.max():.0f} A")
    return inst
