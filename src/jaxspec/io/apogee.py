"""APOGEE readers: apStar (combined + visit rows), aspcapStar (normalized), apVisit (3 chips).

Layouts (DR13 r6 / r13, see ../shared/data/survey-files/README.md): apStar and aspcapStar share
the log-linear grid lambda = 10**(CRVAL1 + CDELT1 (p + 1 - CRPIX1)), 8575 pixels, 15100.80-16999.81
A; apVisit carries an explicit wavelength array (HDU 4, (3, 4096), descending within each chip,
chips stored red to blue). APOGEE wavelengths are vacuum (survey convention; headers are silent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxspec.io._fitsutil import fits_errors, hget, open_fits, scalar, wcs_wavelength
from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, clean_pixels

__all__ = [
    "APOGEE_PIXMASK_BITS",
    "APOGEE_BAD_PIXMASK",
    "APOGEE_RESOLUTION",
    "read_apstar",
    "read_aspcapstar",
    "read_apvisit",
]

#: APOGEE_PIXMASK bit numbers (SDSS data model; also jobovy/apogee ``apogee.tools.bitmask``).
APOGEE_PIXMASK_BITS = {
    "BADPIX": 0, "CRPIX": 1, "SATPIX": 2, "UNFIXABLE": 3, "BADDARK": 4, "BADFLAT": 5, "BADERR": 6,
    "NOSKY": 7, "LITTROW_GHOST": 8, "PERSIST_HIGH": 9, "PERSIST_MED": 10, "PERSIST_LOW": 11,
    "SIG_SKYLINE": 12, "SIG_TELLURIC": 13, "NOT_ENOUGH_PSF": 14,
}

#: Default bad-pixel bits: the ones the APOGEE reduction pipeline itself flags as bad
#: (``badflag = 1`` in apogeereduce ``getmaskvals.pro``): BADPIX, CRPIX, SATPIX, UNFIXABLE,
#: BADDARK, BADFLAT, BADERR, NOSKY and NOT_ENOUGH_PSF = bits 0-7 and 14 = 16639. The
#: persistence, Littrow-ghost, sky-line and telluric bits are warnings ("may be affected"), left
#: unmasked so that a fit keeps most of the spectrum; pass ``mask_bits=`` to change this.
APOGEE_BAD_PIXMASK = sum(
    1 << APOGEE_PIXMASK_BITS[n]
    for n in ("BADPIX", "CRPIX", "SATPIX", "UNFIXABLE", "BADDARK", "BADFLAT", "BADERR", "NOSKY",
              "NOT_ENOUGH_PSF")
)

#: Resolving power of the APOGEE spectrographs, R ~ 22,500 (Wilson et al. 2019, PASP 131, 055001).
APOGEE_RESOLUTION = 22500.0


def _bits(mask_bits):
    """``mask_bits`` as an integer: an int bitmask, or an iterable of bit numbers / bit names."""
    if mask_bits is None:
        return APOGEE_BAD_PIXMASK
    if isinstance(mask_bits, int | np.integer):
        return int(mask_bits)
    total = 0
    for b in mask_bits:
        if isinstance(b, str):
            if b.upper() not in APOGEE_PIXMASK_BITS:
                raise ValueError(f"unknown APOGEE_PIXMASK bit name {b!r}; known: {list(APOGEE_PIXMASK_BITS)}")
            b = APOGEE_PIXMASK_BITS[b.upper()]
        total |= 1 << int(b)
    return total


def _clean(flux, err, bitmask, bits):
    """Finite flux + ivar: mask flagged bits, zero-flux gaps, non-finite/absurd errors."""
    flux = np.asarray(flux, dtype=np.float64)
    bad = flux == 0.0  # chip gaps (and unfilled pixels) are stored as exact zeros
    if bitmask is not None:
        bad |= (np.asarray(bitmask).astype(np.int64) & bits) != 0
    return clean_pixels(flux, err=err, mask=bad)


def _image_rows(h, path, what):
    if h.data is None:
        raise SpectrumFormatError(f"{path}: {what} HDU is empty")
    return np.atleast_2d(np.asarray(h.data))


def _need_hdus(hdul, n, path, fmt):
    if len(hdul) < n:
        raise SpectrumFormatError(f"{path}: {fmt} needs at least {n} HDUs, file has {len(hdul)}")


def _apstar_one(path, hd0, wave, flux, err, mask, r, bits, mjds, sid):
    f, iv = _clean(flux[r], err[r], mask[r], bits)
    meta = {
        "format": "apstar", "path": str(path), "row": int(r), "air_converted": False,
        "mask_bits": int(bits), "frame": "rest (pipeline RV removed)",
        "nvisits": scalar(hget(hd0, "NVISITS")), "vscatter": scalar(hget(hd0, "VSCATTER")),
        "telescope": scalar(hget(hd0, "TELESCOP")), "flux_unit": "1e-17 erg/s/cm^2/Angstrom",
        "snr": scalar(hget(hd0, "SNR")), "vhelio": scalar(hget(hd0, "VHELIO")),
    }
    if flux.shape[0] == 1:  # single-visit file: the one row is both the combination and the visit
        meta.update(kind="single visit", visit=1, mjd=mjds.get(0), jd=scalar(hget(hd0, "JD1")))
    elif r >= 2:
        k = r - 1  # visit number k of the header's SNRVISk / VHELIOk / JDk keywords
        meta.update(kind="visit", visit=k, snr=scalar(hget(hd0, f"SNRVIS{k}")),
                    vhelio=scalar(hget(hd0, f"VHELIO{k}")), jd=scalar(hget(hd0, f"JD{k}")),
                    mjd=mjds.get(k - 1))
    else:
        meta["kind"] = "combined, pixel-weighted" if r == 0 else "combined, global-weighted"
    return Spectrum(wave=wave, flux=f, ivar=iv, id=sid, resolution=APOGEE_RESOLUTION, meta=meta)


def read_apstar(path, row: int = 0, *, visits: bool = False, mask_bits=None):
    """Read an APOGEE apStar file (combined spectra in the star's rest frame).

    Parameters
    ----------
    path : str or Path
    row : int
        Row of the (N, 8575) images: 0 = combined with pixel-based weighting, 1 = combined with
        global weighting, 2.. = individual visits (shifted to rest frame by the pipeline).
    visits : bool
        If True return a list with one Spectrum per visit row (2..). A single-visit file
        (NVISITS = 1) stores 1-D images; then row 0 is the one visit and the list has one entry.
    mask_bits : int or iterable of int/str, optional
        APOGEE_PIXMASK bits that mask a pixel (default :data:`APOGEE_BAD_PIXMASK`).

    Returns
    -------
    Spectrum (or list of Spectrum): 8575 pixels, vacuum Angstrom 15100.80-16999.81 A (from the
    header WCS), flux [1e-17 erg/s/cm^2/A], ivar = 0 on flagged pixels, chip gaps (zero flux) and
    absurd (1e10) errors; id = OBJID; ``resolution`` 22,500; meta: snr, vhelio, nvisits, vscatter,
    row / visit, mjd and jd for visits.

    Raises
    ------
    SpectrumFormatError
        Not a readable apStar layout; row out of range.
    """
    bits = _bits(mask_bits)
    with open_fits(path, "APOGEE apStar") as hdul:
        _need_hdus(hdul, 4, path, "apStar")
        hd0 = hdul[0].header
        flux = _image_rows(hdul[1], path, "flux (HDU 1)")
        err = _image_rows(hdul[2], path, "error (HDU 2)")
        mask = _image_rows(hdul[3], path, "bitmask (HDU 3)")
        if not (flux.shape == err.shape == mask.shape):
            raise SpectrumFormatError(
                f"{path}: apStar flux/error/mask shapes differ: {flux.shape}, {err.shape}, {mask.shape}"
            )
        if mask.dtype.kind not in "iu":  # e.g. an aspcapStar (HDU 3: its float model spectrum)
            raise SpectrumFormatError(
                f"{path}: apStar HDU 3 must be an integer bitmask, got {mask.dtype}: not an apStar layout"
            )
        wave, _ = wcs_wavelength(hdul[1].header, flux.shape[1], path)
        mjds = {}
        if len(hdul) > 9 and hasattr(hdul[9], "columns") and "MJD" in hdul[9].columns.names:
            mjds = {i: scalar(m) for i, m in enumerate(np.ravel(hdul[9].data["MJD"]))}
        sid = str(hget(hd0, "OBJID", "APOGEE_ID", default=Path(path).stem))
        nrow = flux.shape[0]
        if visits:
            rows = list(range(2, nrow)) if nrow > 2 else [0]
        else:
            if not -nrow <= row < nrow:
                raise SpectrumFormatError(f"{path}: apStar row {row} out of range (file has {nrow} rows)")
            rows = [row % nrow]
        out = [_apstar_one(path, hd0, wave, flux, err, mask, r, bits, mjds, sid) for r in rows]
    return out if visits else out[0]


def read_aspcapstar(path, *, mask_bits=None):
    """Read an APOGEE aspcapStar file (continuum-normalized combined spectrum).

    HDU 1 normalized flux, HDU 2 error, HDU 3 ASPCAP best-fit model (not read), HDU 4 one-row
    table of ASPCAP results.

    Parameters
    ----------
    path : str or Path
    mask_bits : optional
        Accepted for symmetry with :func:`read_apstar` and ignored: aspcapStar stores no bitmask.

    Returns
    -------
    Spectrum: 8575 pixels, vacuum Angstrom (header WCS), normalized flux; ivar = 0 in the
    zero-filled chip gaps and at non-finite / zero / absurd errors; id = APOGEE_ID (HDU 4) or the
    primary OBJ/OBJID; ``resolution`` 22,500; meta: snr, vhelio, nvisits, and from HDU 4
    ``aspcap_param`` / ``aspcap_fparam`` (lists of floats, release-dependent order; index 0 = Teff
    [K], 1 = logg), ``aspcap_teff`` / ``aspcap_logg`` (None when ASPCAP gave -9999), ``aspcapflag``.

    Raises
    ------
    SpectrumFormatError
        Not a readable aspcapStar layout.
    """
    with open_fits(path, "APOGEE aspcapStar") as hdul:
        _need_hdus(hdul, 3, path, "aspcapStar")
        hd0 = hdul[0].header
        if hdul[1].data is not None and np.squeeze(hdul[1].data).ndim != 1:  # e.g. an apStar's rows
            raise SpectrumFormatError(f"{path}: aspcapStar HDU 1 must be a 1-D spectrum, got shape "
                                      f"{hdul[1].data.shape}: not an aspcapStar layout")
        flux = np.asarray(hdul[1].data, dtype=np.float64).ravel() if hdul[1].data is not None else None
        err = np.asarray(hdul[2].data, dtype=np.float64).ravel() if hdul[2].data is not None else None
        if flux is None or err is None or flux.size != err.size:
            raise SpectrumFormatError(
                f"{path}: aspcapStar HDU 1 (flux) and HDU 2 (error) missing or mismatched"
            )
        wave, _ = wcs_wavelength(hdul[1].header, flux.size, path)
        meta = {"format": "aspcapstar", "path": str(path), "air_converted": False, "normalized": True,
                "snr": scalar(hget(hd0, "SNR")), "vhelio": scalar(hget(hd0, "VHELIO")),
                "nvisits": scalar(hget(hd0, "NVISITS")), "frame": "rest (pipeline RV removed)"}
        sid = hget(hd0, "OBJID", "OBJ", "APOGEE_ID")
        if len(hdul) > 4 and hasattr(hdul[4], "columns") and len(hdul[4].data):
            t = hdul[4].data
            names = t.columns.names
            if "APOGEE_ID" in names:
                sid = scalar(t["APOGEE_ID"][0]) or sid
            for col, key in (("PARAM", "aspcap_param"), ("FPARAM", "aspcap_fparam")):
                if col in names:
                    meta[key] = [float(v) for v in np.ravel(t[col][0])]
            if "ASPCAPFLAG" in names:
                meta["aspcapflag"] = int(np.ravel(t["ASPCAPFLAG"])[0])
            par = meta.get("aspcap_param", [])
            for i, key in enumerate(("aspcap_teff", "aspcap_logg")):
                v = par[i] if len(par) > i else None
                meta[key] = v if v is not None and np.isfinite(v) and v > -9000 else None
    f, iv = _clean(flux, err, None, 0)
    with fits_errors(path, "APOGEE aspcapStar"):
        return Spectrum(wave=wave, flux=f, ivar=iv, id=str(sid or Path(path).stem),
                        resolution=APOGEE_RESOLUTION, meta=meta)


def read_apvisit(path, *, mask_bits=None):
    """Read an APOGEE apVisit file (one visit, observed frame, 3 chips x 4096 pixels).

    HDU 1 flux, 2 error, 3 bitmask, 4 wavelength (float64, (3, 4096), descending within each
    chip). The chips are reversed and concatenated into one increasing spectrum (blue, green,
    red); the gaps between chips simply have no pixels.

    Parameters
    ----------
    path : str or Path
    mask_bits : int or iterable of int/str, optional
        APOGEE_PIXMASK bits that mask a pixel (default :data:`APOGEE_BAD_PIXMASK`).

    Returns
    -------
    Spectrum: 12288 pixels, vacuum Angstrom about 15142-16955 A; flux [1e-17 erg/s/cm^2/A];
    ivar = 0 on ``mask_bits`` (default :data:`APOGEE_BAD_PIXMASK`), zero flux, non-finite /
    absurd errors; id = OBJID (or APOGEE_ID in HDU 11); ``resolution`` 22,500; meta: mjd (MJD5),
    jd (JD-MID), snr, vhelio, vrad, bc (barycentric correction, km/s), frame "observed".

    Raises
    ------
    SpectrumFormatError
        Not a readable apVisit layout (fewer than 5 HDUs, shapes differ, wavelengths not
        monotonic within a chip).
    """
    bits = _bits(mask_bits)
    with open_fits(path, "APOGEE apVisit") as hdul:
        _need_hdus(hdul, 5, path, "apVisit")
        hd0 = hdul[0].header
        flux = _image_rows(hdul[1], path, "flux (HDU 1)")
        err = _image_rows(hdul[2], path, "error (HDU 2)")
        mask = _image_rows(hdul[3], path, "bitmask (HDU 3)")
        wave = _image_rows(hdul[4], path, "wavelength (HDU 4)").astype(np.float64)
        if not (flux.shape == err.shape == mask.shape == wave.shape):
            raise SpectrumFormatError(
                f"{path}: apVisit flux/error/mask/wavelength shapes differ: "
                f"{flux.shape}, {err.shape}, {mask.shape}, {wave.shape}"
            )
        sid = hget(hd0, "OBJID", "APOGEE_ID")
        if sid is None and len(hdul) > 11 and hasattr(hdul[11], "columns"):
            if "APOGEE_ID" in hdul[11].columns.names:
                sid = scalar(hdul[11].data["APOGEE_ID"][0])
        meta = {"format": "apvisit", "path": str(path), "air_converted": False, "mask_bits": int(bits),
                "frame": "observed", "flux_unit": "1e-17 erg/s/cm^2/Angstrom",
                "mjd": scalar(hget(hd0, "MJD5", "MJD")), "jd": scalar(hget(hd0, "JD-MID")),
                "snr": scalar(hget(hd0, "SNR")), "vhelio": scalar(hget(hd0, "VHELIO")),
                "vrad": scalar(hget(hd0, "VRAD")), "bc": scalar(hget(hd0, "BC")),
                "telescope": scalar(hget(hd0, "TELESCOP")), "nchips": int(flux.shape[0])}
    parts = []
    for c in range(flux.shape[0]):
        w = wave[c]
        if w.size > 1 and w[0] > w[-1]:
            sl = slice(None, None, -1)
        else:
            sl = slice(None)
        f, iv = _clean(flux[c][sl], err[c][sl], mask[c][sl], bits)
        parts.append((w[sl], f, iv))
    parts.sort(key=lambda p: p[0][0])
    w, f, iv = (np.concatenate([p[i] for p in parts]) for i in range(3))
    with fits_errors(path, "APOGEE apVisit"):
        return Spectrum(wave=w, flux=f, ivar=iv, id=str(sid or Path(path).stem),
                        resolution=APOGEE_RESOLUTION, meta=meta)
