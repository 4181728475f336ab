"""LAMOST readers: medium-resolution (MRS, ``med-*.fits``) and low-resolution (LRS, ``spec-*.fits``) spectra.

Layouts (DR7, see ../shared/data/survey-files/README.md). MRS: primary header (OBSID, VACUUM = T)
then tables COADD_B, COADD_R and one per exposure (B-<LMJM>, R-<LMJM>) with FLUX, IVAR, LOGLAM
(log10 Angstrom) and ANDMASK/ORMASK (coadds) or PIXMASK (exposures), one pixel per row; the S/N of
each arm is the SNR keyword of its HDU. LRS: primary image (5, P) = flux, ivar, wavelength, andmask,
ormask. Later data releases store the same columns as one row of arrays; both are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxspec.io._fitsutil import fits_errors, header_air, hget, open_fits, scalar, to_vacuum
from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, clean_pixels

__all__ = ["LAMOST_MRS_RESOLUTION", "LAMOST_LRS_RESOLUTION", "read_lamost_mrs", "read_lamost_lrs",
           "lamost_mrs_exposures"]

#: Resolving power of LAMOST MRS, R ~ 7,500 (Liu et al. 2020, arXiv:2005.07210).
LAMOST_MRS_RESOLUTION = 7500.0
#: Resolving power of LAMOST LRS, R ~ 1,800 at 5,500 A (Cui et al. 2012, RAA 12, 1197).
LAMOST_LRS_RESOLUTION = 1800.0

_ARMS = {"both": ("B", "R"), "b": ("B",), "blue": ("B",), "r": ("R",), "red": ("R",)}


def _col(data, names, wanted, path, hname, required=True):
    lower = {n.lower(): n for n in names}
    for w in wanted:
        if w.lower() in lower:
            return np.asarray(data[lower[w.lower()]]).ravel()
    if required:
        raise SpectrumFormatError(
            f"{path}: HDU {hname} has no {'/'.join(wanted)} column (columns: {list(names)})"
        )
    return None


def _arm(hdul, hname, path, mask_kind):
    """(wave, flux, ivar, snr) of one MRS table HDU; wave in the file's frame (vacuum or air)."""
    try:
        h = hdul[hname]
    except KeyError:
        raise SpectrumFormatError(
            f"{path}: no HDU {hname!r} (HDUs: {[x.name for x in hdul]})"
        ) from None
    if not hasattr(h, "columns") or h.data is None:
        raise SpectrumFormatError(f"{path}: HDU {hname!r} is not a non-empty table")
    names = h.columns.names
    flux = _col(h.data, names, ("FLUX",), path, hname)
    ivar = _col(h.data, names, ("IVAR",), path, hname)
    loglam = _col(h.data, names, ("LOGLAM",), path, hname, required=False)
    if loglam is not None:
        wave = 10.0 ** loglam.astype(np.float64)
    else:
        wave = _col(h.data, names, ("WAVELENGTH", "WAVE"), path, hname).astype(np.float64)
    masks = {"and": ("ANDMASK", "PIXMASK"), "or": ("ORMASK", "PIXMASK")}.get(mask_kind)
    mask = None if masks is None else _col(h.data, names, masks, path, hname, required=False)
    f, iv = clean_pixels(flux, ivar=ivar, mask=None if mask is None else mask != 0)
    if wave.size > 1 and wave[0] > wave[-1]:
        wave, f, iv = wave[::-1], f[::-1], iv[::-1]
    snr = scalar(hget(h.header, "SNR"))
    return wave, f, iv, snr


def lamost_mrs_exposures(hdul) -> list[str]:
    """LMJM labels of the single exposures in an open MRS HDUList (from B-*/R-* EXTNAMEs), sorted."""
    labels = set()
    for h in hdul:
        name = h.name.upper()
        if len(name) > 2 and name[:2] in ("B-", "R-"):
            labels.add(name[2:])
    return sorted(labels)


def read_lamost_mrs(path, *, arm: str = "both", exposure=None, mask: str = "and") -> Spectrum:
    """Read a LAMOST medium-resolution spectrum (``med-*.fits``).

    Parameters
    ----------
    path : str or Path
    arm : {"both", "b"/"blue", "r"/"red"}
        "both" joins blue (about 4950-5350 A) and red (about 6300-6800 A) into one increasing
        spectrum (the gap between arms has no pixels); an arm missing from the file is skipped.
    exposure : None, int or str
        None: the coadded spectra COADD_B / COADD_R. An int picks the i-th single exposure (in
        LMJM order); a str its LMJM label ("84107311") or EXTNAME ("B-84107311").
    mask : {"and", "or", "none"}
        Coadds: mask pixels with a nonzero ANDMASK (bad in every exposure; default) or ORMASK (bad
        in any); single exposures use PIXMASK either way. Zero / non-finite ivar is always masked.

    Returns
    -------
    Spectrum: vacuum Angstrom (VACUUM = T; air is converted if a header says VACUUM = F),
    id = OBSID; ``resolution`` 7,500; meta: snr_b, snr_r (HDU SNR keywords), snr (the larger),
    arms, exposure, mjd, objname, desig, helio_rv.

    Raises
    ------
    SpectrumFormatError
        Not FITS, no requested HDU or column, unknown exposure.
    ValueError
        Unknown ``arm`` or ``mask``.
    """
    arms = _ARMS.get(str(arm).lower())
    if arms is None:
        raise ValueError(f"arm must be one of {list(_ARMS)}, got {arm!r}")
    if mask not in ("and", "or", "none", None):
        raise ValueError(f"mask must be 'and', 'or' or 'none', got {mask!r}")
    with open_fits(path, "LAMOST MRS") as hdul:
        hd0 = hdul[0].header
        names = {h.name.upper() for h in hdul}
        if exposure is None:
            hnames = {a: f"COADD_{a}" for a in arms}
            label = "coadd"
        else:
            exps = lamost_mrs_exposures(hdul)
            if isinstance(exposure, int | np.integer):
                if not -len(exps) <= exposure < len(exps):
                    raise SpectrumFormatError(
                        f"{path}: exposure {exposure} out of range ({len(exps)} exposures)"
                    )
                label = exps[exposure]
            else:
                label = str(exposure).upper()
                label = label[2:] if label[:2] in ("B-", "R-") else label
                if label not in exps:
                    raise SpectrumFormatError(f"{path}: no exposure {exposure!r} (exposures: {exps})")
            hnames = {a: f"{a}-{label}" for a in arms}
        present = {a: n for a, n in hnames.items() if n in names}
        if len(arms) == 1 and not present:
            raise SpectrumFormatError(f"{path}: no HDU {hnames[arms[0]]!r} (HDUs: {[h.name for h in hdul]})")
        if not present:
            raise SpectrumFormatError(
                f"{path}: none of the HDUs {list(hnames.values())} present (HDUs: {[h.name for h in hdul]});"
                " not a LAMOST MRS file?"
            )
        parts, meta = [], {"format": "lamost_mrs", "path": str(path), "exposure": label}
        for a, hn in present.items():
            w, f, iv, snr = _arm(hdul, hn, path, mask)
            parts.append((w, f, iv))
            meta[f"snr_{a.lower()}"] = snr
        is_air = header_air(hd0) is True
        sid = str(hget(hd0, "OBSID", "OBJNAME", default=Path(path).stem))
        meta.update(
            arms="".join(present), hdus=",".join(present.values()), air_converted=is_air,
            mjd=scalar(hget(hd0, "MJD")), objname=scalar(hget(hd0, "OBJNAME")),
            desig=scalar(hget(hd0, "DESIG")), helio_rv=scalar(hget(hd0, "HELIO_RV")),
            mask=str(mask),
        )
        snrs = [v for k, v in meta.items() if k.startswith("snr_") and isinstance(v, int | float)]
        meta["snr"] = max(snrs) if snrs else None
        parts.sort(key=lambda p: p[0][0])
        w, f, iv = (np.concatenate([p[i] for p in parts]) for i in range(3))
        w = to_vacuum(w, is_air)
        return Spectrum(wave=w, flux=f, ivar=iv, id=sid, resolution=LAMOST_MRS_RESOLUTION, meta=meta)


def read_lamost_lrs(path, *, mask: str = "and") -> Spectrum:
    """Read a LAMOST low-resolution spectrum (``spec-*.fits``).

    The primary image (5, P) holds flux, ivar, wavelength [Angstrom], andmask, ormask (DR1-DR7);
    a file whose primary is empty and whose first extension is a table with FLUX, IVAR,
    WAVELENGTH, ANDMASK, ORMASK (later releases) is read the same way.

    Parameters
    ----------
    path : str or Path
    mask : {"and", "or", "none"}
        "and" (default) masks a nonzero andmask, "or" a nonzero ormask, "none" neither.

    Returns
    -------
    Spectrum: about 3700-9100 A vacuum (VACUUM = T; converted if a header says VACUUM = F);
    id = OBSID; ``resolution`` 1,800; meta: snr_u/g/r/i/z, snr (the largest), mjd, z, helio_rv,
    class, subclass, objname, desig.

    Raises
    ------
    SpectrumFormatError
        Not FITS or not this layout.
    ValueError
        Unknown ``mask``.
    """
    if mask not in ("and", "or", "none", None):
        raise ValueError(f"mask must be 'and', 'or' or 'none', got {mask!r}")
    with open_fits(path, "LAMOST LRS") as hdul:
        hd0 = hdul[0].header
        data = hdul[0].data
        if data is not None:
            data = np.asarray(data, dtype=np.float64)
            if data.ndim != 2 or data.shape[0] < 3:
                raise SpectrumFormatError(
                    f"{path}: LAMOST LRS primary image should be (5, P) flux/ivar/wave/andmask/ormask,"
                    f" got shape {data.shape}"
                )
            flux, ivar, wave = data[0], data[1], data[2]
            andm = data[3] if data.shape[0] > 3 else None
            orm = data[4] if data.shape[0] > 4 else None
        elif len(hdul) > 1 and hasattr(hdul[1], "columns"):
            t, names, hn = hdul[1].data, hdul[1].columns.names, hdul[1].name
            flux = _col(t, names, ("FLUX",), path, hn).astype(np.float64)
            ivar = _col(t, names, ("IVAR",), path, hn).astype(np.float64)
            wave = _col(t, names, ("WAVELENGTH", "WAVE"), path, hn).astype(np.float64)
            andm = _col(t, names, ("ANDMASK",), path, hn, required=False)
            orm = _col(t, names, ("ORMASK",), path, hn, required=False)
        else:
            raise SpectrumFormatError(f"{path}: no LAMOST LRS data (empty primary and no table)")
        m = {"and": andm, "or": orm}.get(mask)
        f, iv = clean_pixels(flux, ivar=ivar, mask=None if m is None else m != 0)
        if wave.size > 1 and wave[0] > wave[-1]:
            wave, f, iv = wave[::-1], f[::-1], iv[::-1]
        is_air = header_air(hd0) is True
        meta = {"format": "lamost_lrs", "path": str(path), "air_converted": is_air, "mask": str(mask)}
        for band in "ugriz":
            meta[f"snr_{band}"] = scalar(hget(hd0, f"SNR{band.upper()}"))
        snrs = [v for k, v in meta.items() if k.startswith("snr_") and isinstance(v, int | float)]
        meta["snr"] = max(snrs) if snrs else None
        for key in ("MJD", "Z", "HELIO_RV", "CLASS", "SUBCLASS", "OBJNAME", "DESIG"):
            meta[key.lower()] = scalar(hget(hd0, key))
        sid = str(hget(hd0, "OBSID", "OBJNAME", default=Path(path).stem))
        with fits_errors(path, "LAMOST LRS"):
            return Spectrum(wave=to_vacuum(wave, is_air), flux=f, ivar=iv, id=sid,
                            resolution=LAMOST_LRS_RESOLUTION, meta=meta)
