"""FITS helpers shared by the spectrum readers: opening with useful errors, header look-ups, WCS, air.

Private to :mod:`jaxspec.io`; astropy is imported inside the functions (lazy).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np

from jaxspec.io.spectrum import SpectrumFormatError

ID_KEYS = ("OBJID", "APOGEE_ID", "OBSID", "OBJNAME", "OBJ_NAME", "OBJECT")

# Wavelength units (lower case, as found in CUNIT1 / TUNITn) -> factor to Angstrom.
_UNITS = {"angstrom": 1.0, "angstroms": 1.0, "a": 1.0, "aa": 1.0, "ang": 1.0, "0.1 nm": 1.0,
          "nm": 10.0, "nanometer": 10.0, "um": 1e4, "micron": 1e4, "microns": 1e4, "m": 1e10}


@contextlib.contextmanager
def fits_errors(path, what: str):
    """Re-raise anything a malformed file makes astropy/numpy throw as :class:`SpectrumFormatError`.

    The message names the file and ``what`` was being read.
    """
    try:
        yield
    except SpectrumFormatError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, AttributeError, Warning) as exc:
        raise SpectrumFormatError(f"{path}: cannot read {what}: {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def open_fits(path, what: str = "FITS file"):
    """Open ``path`` with astropy (no memmap) and yield the HDUList; errors -> SpectrumFormatError.

    Header-fixing noise (VerifyWarning) is silenced; astropy's "file may have been truncated"
    warning becomes an error, because a truncated file otherwise yields zero-filled data.
    """
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    path = Path(path)
    if not path.is_file():
        raise SpectrumFormatError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
    with warnings.catch_warnings(), fits_errors(path, what):
        warnings.simplefilter("ignore", VerifyWarning)
        warnings.filterwarnings("error", message=".*truncated.*")
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
            yield hdul


def hget(header, *keys, default=None):
    """First present, non-blank value among ``keys`` in ``header`` (str values stripped)."""
    for k in keys:
        if k in header:
            v = header[k]
            if isinstance(v, str):
                v = v.strip()
                if not v:
                    continue
            if v is None or type(v).__name__ == "Undefined":
                continue
            return v
    return default


def scalar(v):
    """numpy scalar -> plain Python float/int/str/bool (JSON-able); None stays None."""
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode(errors="replace").strip()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str):
        return v.strip()
    return v


def header_air(*headers):
    """True (air), False (vacuum) or None (silent) from VACUUM / AIRORVAC / CTYPE1 keywords."""
    for h in headers:
        if h is None:
            continue
        if "VACUUM" in h:
            v = h["VACUUM"]
            if isinstance(v, bool):
                return not v
            if isinstance(v, str) and v.strip().upper() in ("T", "TRUE", "F", "FALSE", "Y", "N"):
                return v.strip().upper() in ("F", "FALSE", "N")
        v = str(h.get("AIRORVAC", "")).strip().lower()
        if v.startswith("air"):
            return True
        if v.startswith("vac"):
            return False
        # FITS WCS paper III spectral types only: 'WAVELENGTH' (MIDAS, IRAF) says nothing.
        ctype = str(h.get("CTYPE1", "")).strip().upper()
        if ctype == "AWAV" or ctype.startswith("AWAV-"):
            return True
        if ctype == "WAVE" or ctype.startswith("WAVE-"):
            return False
    return None


def resolve_air(header_says, air, path):
    """Combine what the header says with the user's ``air=``; returns (air: bool, source: str)."""
    if header_says is not None:
        if air is not None and bool(air) != header_says:
            warnings.warn(
                f"{path}: header says {'air' if header_says else 'vacuum'} wavelengths; "
                f"ignoring air={air!r}",
                stacklevel=3,
            )
        return header_says, "header"
    if air is None:
        return False, "assumed vacuum (header silent)"
    return bool(air), "argument"


def to_vacuum(wave, air: bool):
    """Vacuum wavelengths: ``wave`` unchanged, or converted with jaxspec.physics.air_to_vacuum."""
    if not air:
        return wave
    from jaxspec.physics.airvac import air_to_vacuum

    return np.asarray(air_to_vacuum(np.asarray(wave, dtype=np.float64)), dtype=np.float64)


def unit_factor(unit, path, what):
    """Factor from a wavelength unit string to Angstrom (None/blank = Angstrom)."""
    if unit is None or not str(unit).strip():
        return 1.0
    key = str(unit).strip().lower()
    if key not in _UNITS:
        raise SpectrumFormatError(f"{path}: unknown wavelength unit {unit!r} for {what}")
    return _UNITS[key]


def wcs_wavelength(header, npix: int, path="<header>") -> tuple[np.ndarray, str]:
    """(P,) wavelengths [Angstrom, as the header's frame says] from a 1-D spectral WCS.

    ``lambda_p = CRVAL1 + CDELT1 * (p + 1 - CRPIX1)`` for 0-based pixel p (CD1_1 when CDELT1 is
    absent, CRPIX1 default 1); log10 when ``DC-FLAG = 1`` or CTYPE1 is 'LOG-LINEAR'
    (``10**lambda_p``); the FITS-standard 'WAVE-LOG'/'AWAV-LOG' algorithm
    (``CRVAL1 exp(CDELT1 (p + 1 - CRPIX1) / CRVAL1)``); SDSS-style COEFF0/COEFF1 (log10) when
    there is no CRVAL1. CUNIT1 (Angstrom, nm, um, m) is honoured. Returns the wavelengths and a
    short description of the solution used.

    Raises
    ------
    SpectrumFormatError
        When the header holds no usable wavelength solution.
    """
    p = np.arange(npix, dtype=np.float64)
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if "CRVAL1" not in header:
        if "COEFF0" in header and "COEFF1" in header:
            return 10.0 ** (float(header["COEFF0"]) + float(header["COEFF1"]) * p), "log10 COEFF0/COEFF1"
        raise SpectrumFormatError(f"{path}: no wavelength solution (CRVAL1 or COEFF0 missing)")
    crval = float(header["CRVAL1"])
    step = hget(header, "CDELT1", "CD1_1")
    if step is None:
        raise SpectrumFormatError(f"{path}: CRVAL1 present but neither CDELT1 nor CD1_1")
    step = float(step)
    crpix = float(hget(header, "CRPIX1", default=1.0))
    x = crval + step * (p + 1.0 - crpix)
    if ctype.endswith("-LOG") and ctype[:4] in ("WAVE", "AWAV"):
        wave, kind = crval * np.exp(step * (p + 1.0 - crpix) / crval), "WAVE-LOG (natural log)"
    elif ctype == "LOG-LINEAR" or int(hget(header, "DC-FLAG", default=0) or 0) == 1:
        wave, kind = 10.0**x, "log10-linear"
    else:
        wave, kind = x, "linear"
    wave = wave * unit_factor(hget(header, "CUNIT1"), path, "CUNIT1")
    return wave, kind


def object_id(path, *headers, default=None) -> str:
    """Object id from the first header holding OBJID / APOGEE_ID / OBSID / OBJNAME / OBJECT."""
    for h in headers:
        if h is not None:
            v = hget(h, *ID_KEYS)
            if v is not None:
                return str(v)
    return default if default is not None else Path(path).stem
