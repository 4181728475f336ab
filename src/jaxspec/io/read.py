"""One entry point for every spectrum file: ``read_spectrum`` / ``read_spectra`` with format detection.

Detection looks at the file's structure (HDU types, shapes, names, key header words), not its
name, so renamed survey files are still recognised; the file name is only a tie-breaker for
APOGEE layouts whose headers are ambiguous. The rules, first match wins:

1. suffix ``.npz`` -> "npz" (a file written by :meth:`Spectrum.save_npz` or with wave/flux/err|ivar);
2. a table HDU named COADD_B or COADD_R, or TELESCOP = 'LAMOST' with B-*/R-* tables -> "lamost_mrs";
3. a (>=3, P) primary image with TELESCOP = 'LAMOST' or EXTEN0 naming the wavelength row ->
   "lamost_lrs";
4. >= 5 HDUs, HDU 4 a 2-D image of HDU 1's shape whose BUNIT starts 'Wavelength' (or file name
   apVisit*) -> "apvisit";
5. HDU 1 an image with a CRVAL1 wavelength WCS and HDU 3 an integer image of the same shape (the
   bitmask) -> "apstar";
6. HDU 1 a 1-D image with a log-linear WCS, HDU 2 the same shape, and an ASPCAP sign (HDU 4 table
   with PARAM/FPARAM, a FERRE primary keyword, or file name aspcapStar*) -> "aspcapstar";
7. a 1-D primary image with a CRVAL1 WCS, a HERMES / AAT / GALAH primary header (INSTRUME
   'HERMES-2dF', TELESCOP 'Anglo-Australian Telescope' or ORIGIN 'GALAH ...') and an
   ``input_sigma`` extension -> "galah_dr3" (one CCD file; the star's CCD files are read together);
8. the same HERMES primary with a ``relative_error`` extension (IRAF reduction 6.0) -> "galah_dr4";
9. a table with a flux-like and a wavelength-like column -> "fits_table";
10. a 1-D image with CRVAL1 (or COEFF0) -> "fits_image";
otherwise :class:`SpectrumFormatError` listing the HDUs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from jaxspec.io._fitsutil import open_fits
from jaxspec.io.apogee import read_apstar, read_apvisit, read_aspcapstar
from jaxspec.io.fits import (
    FLUX_COLUMNS,
    WAVE_COLUMNS,
    _classify,
    image_spectrum,
    read_fits_image,
    read_fits_table,
    read_fits_table_rows,
)
from jaxspec.io.galah import galah_release, read_galah
from jaxspec.io.lamost import lamost_mrs_exposures, read_lamost_lrs, read_lamost_mrs
from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, from_arrays

__all__ = ["FORMATS", "detect_format", "read_spectrum", "read_spectra", "read_npz"]

#: Format names accepted by ``format=`` (and returned by :func:`detect_format`).
FORMATS = ("apstar", "aspcapstar", "apvisit", "lamost_mrs", "lamost_lrs", "galah_dr3", "galah_dr4",
           "fits_table", "fits_image", "npz")


def _image(h):
    return h.is_image and h.data is not None and h.data.size > 0


def _detect_fits(hdul, path) -> str | None:
    h0 = hdul[0].header
    name = Path(path).name.lower()
    names = [h.name.upper() for h in hdul]
    tables = [h for h in hdul if hasattr(h, "columns")]
    lamost = str(h0.get("TELESCOP", "")).strip().upper() == "LAMOST"
    if any(h.name.upper() in ("COADD_B", "COADD_R") for h in tables) or (
        lamost and any(n[:2] in ("B-", "R-") for n in names)
    ):
        return "lamost_mrs"
    d0 = hdul[0].data
    if d0 is not None and d0.ndim == 2 and d0.shape[0] >= 3 and (
        lamost or "WAVELENGTH" in str(h0.get("EXTEN0", "")).upper()
    ):
        return "lamost_lrs"
    if len(hdul) >= 5 and _image(hdul[1]) and _image(hdul[4]) and hdul[1].data.ndim == 2:
        same = hdul[4].data.shape == hdul[1].data.shape
        if same and (str(hdul[4].header.get("BUNIT", "")).lower().startswith("wavelength")
                     or name.startswith("apvisit")):
            return "apvisit"
    if len(hdul) >= 4 and _image(hdul[1]) and _image(hdul[3]) and "CRVAL1" in hdul[1].header:
        if hdul[3].data.dtype.kind in "iu" and hdul[3].data.shape == hdul[1].data.shape:
            return "apstar"
    if len(hdul) >= 3 and _image(hdul[1]) and _image(hdul[2]) and hdul[1].data.ndim == 1:
        hd1 = hdul[1].header
        loglin = str(hd1.get("CTYPE1", "")).strip().upper() == "LOG-LINEAR" or hd1.get("DC-FLAG") == 1
        aspcap_table = len(hdul) > 4 and hasattr(hdul[4], "columns") and (
            {"PARAM", "FPARAM"} & set(hdul[4].columns.names)
        )
        if loglin and hdul[2].data.shape == hdul[1].data.shape and (
            aspcap_table or "FERRE" in h0 or name.startswith("aspcapstar")
        ):
            return "aspcapstar"
    galah = galah_release(hdul)
    if galah is not None:
        return galah
    for h in tables:
        cols = {c.lower() for c in h.columns.names}
        if cols & set(FLUX_COLUMNS) and cols & set(WAVE_COLUMNS):
            return "fits_table"
    for h in hdul:
        if _image(h) and h.data.squeeze().ndim == 1 and ("CRVAL1" in h.header or "COEFF0" in h.header):
            return "fits_image"
    return None


def detect_format(path) -> str:
    """Name of the layout of ``path`` (one of :data:`FORMATS`), by the rules in the module docstring.

    Raises
    ------
    SpectrumFormatError
        The file is missing, not FITS/npz, or no rule matches (the message lists its HDUs).
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return "npz"
    with open_fits(path, "spectrum file (format detection)") as hdul:
        fmt = _detect_fits(hdul, path)
        if fmt is None:
            desc = [(h.name, type(h).__name__, getattr(h.data, "shape", None)) for h in hdul]
            raise SpectrumFormatError(
                f"{path}: unrecognised spectrum layout (HDUs: {desc}); pass format= one of {FORMATS}"
            )
    return fmt


def read_npz(path, *, id=None) -> Spectrum:
    """Read a spectrum from an .npz with arrays ``wave``, ``flux`` and ``ivar`` or ``err`` (optional
    ``mask``, ``id``, ``resolution``, ``meta`` as JSON), e.g. written by :meth:`Spectrum.save_npz`.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file (read without pickles); ``wave`` in vacuum Angstrom.
    id : str, optional
        Overrides the file's ``id`` (default: it, else the file stem).

    Returns
    -------
    Spectrum

    Raises
    ------
    SpectrumFormatError
        Unreadable file or a missing array.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise SpectrumFormatError(f"{path}: cannot read npz spectrum: {type(exc).__name__}: {exc}") from exc
    missing = [k for k in ("wave", "flux") if k not in data]
    if missing:
        raise SpectrumFormatError(f"{path}: npz spectrum lacks array(s) {missing} (has {sorted(data)})")
    meta = {}
    if "meta" in data:
        try:
            meta = json.loads(str(data["meta"]))
        except json.JSONDecodeError as exc:
            raise SpectrumFormatError(f"{path}: npz 'meta' is not JSON: {exc}") from exc
    res = float(data["resolution"]) if "resolution" in data else np.nan
    meta.update(format="npz", path=str(path))
    sid = id if id is not None else (str(data["id"]) if "id" in data else Path(path).stem)
    try:
        return from_arrays(data["wave"], data["flux"], err=data.get("err"), ivar=data.get("ivar"),
                           mask=data.get("mask"), id=sid, resolution=None if np.isnan(res) else res,
                           meta=meta)
    except ValueError as exc:
        raise SpectrumFormatError(f"{path}: invalid npz spectrum: {exc}") from exc


_READERS = {
    "apstar": read_apstar,
    "aspcapstar": read_aspcapstar,
    "apvisit": read_apvisit,
    "lamost_mrs": read_lamost_mrs,
    "lamost_lrs": read_lamost_lrs,
    "galah_dr3": functools.partial(read_galah, release="galah_dr3"),
    "galah_dr4": functools.partial(read_galah, release="galah_dr4"),
    "fits_table": read_fits_table,
    "fits_image": read_fits_image,
    "npz": read_npz,
}


def _format(path, format):
    if format is None:
        return detect_format(path)
    fmt = str(format).strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {FORMATS}")
    return fmt


def read_spectrum(path, format: str | None = None, **kw) -> Spectrum:
    """Read one spectrum from ``path``, detecting the format unless ``format=`` is given.

    Parameters
    ----------
    path : str or Path
    format : str, optional
        One of :data:`FORMATS`; default :func:`detect_format`.
    **kw
        Passed to the format's reader (e.g. ``row=`` for apStar, ``arm=``/``exposure=`` for LAMOST
        MRS, ``air=``/``hdu=``/column names for the generic readers).

    Returns
    -------
    Spectrum: for apStar the first combined spectrum (row 0), for LAMOST MRS the blue+red coadd,
    for a GALAH CCD file the star's CCD files joined (``ccds=``, ``normalized=`` as
    :func:`read_galah`), for a multi-row table row 0, for a multi-HDU image the first 1-D image.

    Raises
    ------
    SpectrumFormatError
        Unreadable file, unrecognised layout, missing HDU/column (message names the file).
    ValueError
        Unknown ``format`` or reader option.
    """
    fmt = _format(path, format)
    if fmt == "apstar" and kw.get("visits"):
        raise ValueError("read_spectrum returns one spectrum; use read_spectra() for the apStar visits")
    return _READERS[fmt](path, **kw)


def read_spectra(path, format: str | None = None, **kw) -> list[Spectrum]:
    """Read every individual spectrum a file holds, as a list.

    apStar: the visit rows (2..; the single row of a one-visit file); LAMOST MRS: each single
    exposure (blue+red joined by LMJM; the coadd when the file has no exposures); FITS table:
    every row of a one-spectrum-per-row table; FITS image: every 1-D image HDU sharing the first
    one's EXTNAME (e.g. the echelle orders of a SALT HRS file); other formats (GALAH included: its
    CCD files joined into one spectrum): a one-element list.

    Parameters
    ----------
    path : str or Path
    format : str, optional
        One of :data:`FORMATS`; default :func:`detect_format`.
    **kw
        Passed to the format's reader, as for :func:`read_spectrum`.

    Returns
    -------
    list of Spectrum

    Raises
    ------
    SpectrumFormatError, ValueError
        As :func:`read_spectrum`.
    """
    fmt = _format(path, format)
    if fmt == "apstar":
        kw.pop("visits", None)
        return read_apstar(path, visits=True, **kw)
    if fmt == "lamost_mrs" and kw.get("exposure") is None:
        kw.pop("exposure", None)
        with open_fits(path, "LAMOST MRS") as hdul:
            exps = lamost_mrs_exposures(hdul)
        if not exps:
            return [read_lamost_mrs(path, **kw)]
        return [read_lamost_mrs(path, exposure=e, **kw) for e in exps]
    if fmt == "fits_table":
        kw.pop("row", None)
        return read_fits_table_rows(path, **kw)
    if fmt == "fits_image" and kw.get("hdu") is None:
        kw.pop("hdu", None)
        with open_fits(path, "FITS image spectrum") as hdul:  # one open for all orders
            first = image_spectrum(hdul, path, **kw)
            same = [
                i for i, h in enumerate(hdul)
                if i != first.meta["hdu_index"] and _image(h) and h.data.squeeze().ndim == 1
                and h.name == first.meta["hdu"] and _classify(h) is None and "CRVAL1" in h.header
            ]
            return [first] + [image_spectrum(hdul, path, hdu=i, **kw) for i in same]
    return [read_spectrum(path, format=fmt, **kw)]
