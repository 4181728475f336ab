"""GALAH readers: the per-CCD spectra of GALAH DR3 and of the IRAF reduction 6.0 (DR4), four CCDs joined.

GALAH (HERMES at the AAT) writes one FITS file per star and CCD, named ``<sobject_id><ccd>.fits``
(the 15-digit sobject_id, then the CCD digit 1-4: blue 4713-4903, green 5648-5873, red 6478-6737,
infrared 7585-7887 Angstrom, air). Layouts (see ../shared/data/survey-files/README.md), read off
the files:

DR3 (``ORIGIN = 'GALAH DR3'``), five 1-D images of 4096 pixels:

* HDU 0 (primary): flux [counts], linear WCS (CRVAL1, CDELT1, CRPIX1 1, CUNIT1 'Angstroms');
* HDU 1 ``input_sigma``: the **relative** 1-sigma error, sigma / flux (median 0.01-0.05 for flux of
  300-6000 counts, as the pixel-to-pixel scatter of the flux says: not an absolute sigma);
* HDUs 2-3 ``no_sky_subspectrum`` / ``no_sky_sigma``: the same before sky subtraction (not read);
* HDU 4 ``normalised spectra``: continuum-normalised flux, pixel for pixel the flux of HDU 0 (its
  continuum flux / normalised is smooth) but with its **own** WCS, HDU 0's divided by a constant
  ``1 + v/c``: the spectrum relabelled to the star's rest frame (v = +3.06 km/s in the stored
  star). Each HDU's own WCS is used.

IRAF 6.0 / DR4 (``ORIGIN = 'IRAF reduction pipeline'``, ``PIPE_VER = '6.0'``), eight 1-D images
of 4096 pixels sharing one linear WCS (CTYPE1 'LINEAR', CRVAL1, CDELT1 = CD1_1, CRPIX1 1):

* HDU 0: flux [counts];
* HDU 1 ``normalized``: continuum-normalised flux;
* HDU 2 ``relative_error``: the relative 1-sigma error sigma / flux (BUNIT ''; its median is
  1 / the header SNR, so a standard deviation, not a variance). It is zero or negative where
  the telluric correction drove the flux negative (O2 A band in CCD 4): such pixels are masked;
* HDUs 3-6 ``sky``, ``teluric`` (the telluric correction applied), ``scattered``, ``cross_talk``;
* HDU 7 ``resolution_profile``: the LSF FWHM [Angstrom] per pixel (BUNIT 'angstroms'; the header
  COMMENT: "fwhm is full width at half maximum in angstroms and is given in extension 7"), so
  R = lambda / FWHM (about 18,000-24,000).

The DR4 spectra are barycentric (IRAF ``DOPCOR01`` records the applied correction; ``BARYEFF``
[km/s] is its value). GALAH wavelengths are in **air** by survey convention (the headers are
silent) and are converted to vacuum.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from jaxspec.io._fitsutil import header_air, hget, open_fits, scalar, to_vacuum, wcs_wavelength
from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, clean_pixels

__all__ = ["GALAH_RESOLUTION", "GALAH_CCD_RANGES", "galah_release", "read_galah"]

#: Nominal resolving power of HERMES in the GALAH (high-resolution) mode, R ~ 28,000
#: (Sheinis et al. 2015, JATIS 1, 035002); used for DR3, whose files carry no resolution profile.
GALAH_RESOLUTION = 28000.0

#: Approximate air wavelength range [Angstrom] of each HERMES CCD (1 blue ... 4 infrared).
GALAH_CCD_RANGES = {1: (4713.0, 4903.0), 2: (5648.0, 5873.0), 3: (6476.0, 6738.0), 4: (7584.0, 7888.0)}

_C_KMS = 299792.458
# Extensions (EXTNAME, upper case) a per-CCD file must have: the ones read, and the last one of
# the layout, because a file cut at an HDU boundary opens without astropy's truncation warning.
_REQUIRED = {
    "galah_dr3": ("INPUT_SIGMA", "NORMALISED SPECTRA"),
    "galah_dr4": ("RELATIVE_ERROR", "RESOLUTION_PROFILE"),
}
_CCD_FILE = re.compile(r"^(?P<stem>.+?)(?P<ccd>[1-4])(?P<suffix>\.fits?(?:\.gz)?)$", re.IGNORECASE)


def galah_release(hdul) -> str | None:
    """The layout of an open HDUList, "galah_dr3", "galah_dr4" or None, from structure and headers.

    A GALAH per-CCD file has a 1-D primary image with a CRVAL1 wavelength WCS and a HERMES /
    AAT / GALAH primary header (INSTRUME 'HERMES-2dF', TELESCOP 'Anglo-Australian Telescope' or
    ORIGIN 'GALAH ...'); DR3 has an ``input_sigma`` extension, IRAF 6.0 (DR4) a
    ``relative_error`` extension.
    """
    if len(hdul) < 2 or not _hermes_primary(hdul):
        return None
    names = {h.name.strip().upper() for h in hdul}
    if "INPUT_SIGMA" in names:
        return "galah_dr3"
    if "RELATIVE_ERROR" in names:
        return "galah_dr4"
    return None


def _hermes_primary(hdul) -> bool:
    """True for a 1-D primary image with a CRVAL1 WCS and a HERMES / AAT / GALAH header."""
    h0, d0 = hdul[0].header, hdul[0].data
    if d0 is None or d0.ndim != 1 or d0.size == 0 or "CRVAL1" not in h0:
        return False
    return (
        "HERMES" in str(h0.get("INSTRUME", "")).upper()
        or "ANGLO-AUSTRALIAN" in str(h0.get("TELESCOP", "")).upper()
        or str(h0.get("ORIGIN", "")).strip().upper().startswith("GALAH")
    )


def _describe(hdul) -> str:
    parts = []
    for h in hdul:
        if hasattr(h, "columns"):
            parts.append(f"{h.name or 'table'} table ({len(h.columns)} columns)")
        else:
            shape = None if h.data is None else h.data.shape
            parts.append(f"{h.name or 'image'} image {shape}")
    text = "; ".join(parts)
    if any(hasattr(h, "columns") and "sobject_id" in {c.lower() for c in h.columns.names} for h in hdul):
        text += " - a table of sobject_ids (a GALAH night / summary table?), not a spectrum"
    return text


def _ccd_of_wave(wave_air) -> int | None:
    mid = 0.5 * (float(wave_air[0]) + float(wave_air[-1]))
    for k, (lo, hi) in GALAH_CCD_RANGES.items():
        if lo - 50.0 <= mid <= hi + 50.0:
            return k
    return None


def _parse_ccds(ccds) -> tuple[int, ...] | None:
    """None for "all", else a sorted tuple of distinct CCD numbers in 1..4."""
    if isinstance(ccds, str):
        if ccds.strip().lower() == "all":
            return None
        raise ValueError(f"ccds must be 'all', an int 1-4 or a sequence of them, got {ccds!r}")
    if isinstance(ccds, int | np.integer):
        ccds = (ccds,)
    try:
        picked = sorted({int(c) for c in ccds})
    except (TypeError, ValueError):
        raise ValueError(f"ccds must be 'all', an int 1-4 or a sequence of them, got {ccds!r}") from None
    if not picked or any(c not in GALAH_CCD_RANGES for c in picked):
        raise ValueError(f"ccds must be CCD numbers 1-4 (HERMES blue, green, red, infrared), got {ccds!r}")
    return tuple(picked)


def _ccd_files(path, ccds):
    """(sobject_id, {ccd: file}, label for messages, wanted CCDs or None) for ``path``.

    ``path`` is a CCD file or the star stem; a GALAH file not named ``<stem><ccd>.fits`` is
    returned alone under the key 0 (its CCD is read off its wavelengths).
    """
    path = Path(path)
    want = _parse_ccds(ccds)
    m = _CCD_FILE.match(path.name)
    if path.is_file() and m is None:
        # Not named <sobject_id><ccd>.fits: read this one file, its CCD from its wavelengths.
        return path.stem, {0: path}, str(path), want
    if path.is_dir():
        raise SpectrumFormatError(f"{path}: is a directory, not a GALAH spectrum file or star stem")
    if m is not None:
        if not path.is_file():
            raise SpectrumFormatError(f"{path}: no such file")
        stem, suffix = path.parent / m["stem"], m["suffix"]
    else:
        stem, suffix = path, ".fits"
    found = {k: stem.parent / f"{stem.name}{k}{suffix}" for k in GALAH_CCD_RANGES}
    found = {k: p for k, p in found.items() if p.is_file()}
    label = f"{stem}[1-4]{suffix}"
    if want is None:
        if not found:
            raise SpectrumFormatError(f"{label}: no GALAH CCD files (looked for {stem.name}1..4{suffix})")
        return stem.name, found, label, want
    missing = [k for k in want if k not in found]
    if missing:
        names = ", ".join(f"CCD {k} ({stem.name}{k}{suffix})" for k in missing)
        raise SpectrumFormatError(
            f"{label}: requested GALAH {names} not found (CCD files present: {sorted(found) or 'none'})"
        )
    return stem.name, {k: found[k] for k in want}, label, want


def _hdu(hdul, name, index, path, what):
    """The HDU whose EXTNAME is ``name`` (case-insensitive); ``index`` is where GALAH puts it."""
    for h in hdul:
        if h.name.strip().upper() == name.upper():
            return h
    raise SpectrumFormatError(
        f"{path}: no {what} HDU {name!r} (expected at index {index}; HDUs: {[h.name for h in hdul]})"
    )


def _image_data(h, path, npix=None):
    if h.data is None or h.data.ndim != 1 or h.data.size == 0:
        shape = None if h.data is None else h.data.shape
        raise SpectrumFormatError(f"{path}: HDU {h.name!r} is not a 1-D image (shape {shape})")
    a = np.asarray(h.data, dtype=np.float64)
    if npix is not None and a.size != npix:
        raise SpectrumFormatError(f"{path}: HDU {h.name!r} has {a.size} pixels, the flux has {npix}")
    return a


def _read_ccd(path, ccd, normalized, release):
    """One CCD file -> dict of air wave [A], flux, ivar, FWHM [A] (DR4; None for DR3) and header facts."""
    with open_fits(path, "GALAH CCD spectrum") as hdul:
        rel = galah_release(hdul)
        if rel is None:
            hint = ""
            if _hermes_primary(hdul):
                hint = " - a HERMES spectrum without the GALAH extensions (truncated?)"
            raise SpectrumFormatError(
                f"{path}: not a GALAH DR3 or IRAF 6.0 (DR4) per-CCD spectrum ({_describe(hdul)}){hint}"
            )
        if release is not None and rel != release:
            raise SpectrumFormatError(f"{path}: is a {rel} file, not {release}")
        have = {h.name.strip().upper() for h in hdul}
        missing = [e for e in _REQUIRED[rel] if e not in have]
        if missing:
            raise SpectrumFormatError(
                f"{path}: incomplete {rel} file (truncated?): no HDU {', '.join(map(repr, missing))} "
                f"(HDUs: {[h.name for h in hdul]})"
            )
        h0 = hdul[0].header
        flux = _image_data(hdul[0], path)
        n = flux.size
        if rel == "galah_dr3":
            relerr = _image_data(_hdu(hdul, "input_sigma", 1, path, "relative error"), path, n)
            data_hdu = _hdu(hdul, "normalised spectra", 4, path, "normalised") if normalized else hdul[0]
            fwhm = None
        else:
            relerr = _image_data(_hdu(hdul, "relative_error", 2, path, "relative error"), path, n)
            if normalized and "NORMALIZED" not in have:
                raise SpectrumFormatError(
                    f"{path}: this {rel} file has no normalised-flux HDU 'normalized' (HDUs: "
                    f"{[h.name for h in hdul]}); read it with normalized=False (flux in counts) and "
                    "let the fit's continuum handle the normalisation"
                )
            data_hdu = _hdu(hdul, "normalized", 1, path, "normalised") if normalized else hdul[0]
            fwhm = _image_data(_hdu(hdul, "resolution_profile", 7, path, "resolution"), path, n)
        values = _image_data(data_hdu, path, n)
        wave, _ = wcs_wavelength(data_hdu.header, n, path)
        wave0 = wave if data_hdu is hdul[0] else wcs_wavelength(h0, n, path)[0]
        k = _ccd_of_wave(wave0)
        if ccd and k != ccd:
            raise SpectrumFormatError(
                f"{path}: named as CCD {ccd} but its wavelengths {wave0[0]:.1f}-{wave0[-1]:.1f} A are "
                f"{'CCD ' + str(k) if k else 'outside every HERMES CCD'}"
            )
        if k is None:
            raise SpectrumFormatError(
                f"{path}: wavelengths {wave0[0]:.1f}-{wave0[-1]:.1f} A lie outside every HERMES CCD"
            )
        # relative sigma -> absolute sigma of the values read (the normalised flux is the flux
        # pixel for pixel divided by a continuum, so the relative error applies to it as well)
        ok = np.isfinite(relerr) & (relerr > 0)
        err = np.where(ok, np.abs(values) * np.where(ok, relerr, 0.0), np.nan)
        f, iv = clean_pixels(values, err=err)
        shift = None
        if data_hdu is not hdul[0]:
            ratio = float(np.median(wave0 / wave))
            shift = _C_KMS * (ratio**2 - 1.0) / (ratio**2 + 1.0)  # relativistic, km/s
        if wave.size > 1 and wave[-1] < wave[0]:
            wave, f, iv = wave[::-1], f[::-1], iv[::-1]
            fwhm = None if fwhm is None else fwhm[::-1]
        return {
            "release": rel, "ccd": k, "wave": wave, "flux": f, "ivar": iv, "fwhm": fwhm, "header": h0,
            "hdu": data_hdu.name or "PRIMARY", "air": header_air(data_hdu.header, h0), "shift": shift,
        }


def read_galah(path, *, ccds="all", normalized: bool = False, id=None, release=None) -> Spectrum:
    """Read a GALAH star's per-CCD spectra (DR3 or IRAF 6.0 / DR4) and join them into one Spectrum.

    Parameters
    ----------
    path : str or Path
        One CCD file ``<sobject_id><ccd>.fits`` (ccd 1-4) or the star's stem ``<dir>/<sobject_id>``.
        The sibling files of the same star (the same name with the final digit 1..4) are read.
        A GALAH file named otherwise is read alone (its CCD found from its wavelengths).
    ccds : "all", int or sequence of int
        "all" (default): every sibling CCD file that exists (at least one). An int (e.g. 3) or a
        sequence (e.g. ``(1, 3)``) picks those CCDs; each must exist.
    normalized : bool
        False (default): the flux [counts] of HDU 0. True: the continuum-normalised flux (DR3
        HDU 4 ``normalised spectra`` on its own, rest-frame WCS; DR4 HDU ``normalized``).
    id : str, optional
        Default: the sobject_id (the file stem without the CCD digit).
    release : {"galah_dr3", "galah_dr4"}, optional
        Require this layout (``read_spectrum(format=...)`` passes it); default: detected.

    Returns
    -------
    Spectrum
        Up to four CCD segments of ~4096 pixels each, joined in increasing wavelength (no pixels
        in the gaps between CCDs); wave [Angstrom, vacuum: the air wavelengths converted],
        ``ivar = 1 / (flux x relative error)**2`` [1 / flux unit^2] with 0 where the relative error
        is not positive / finite or the flux is not finite. ``resolution``: DR4 the median over the
        used pixels of R = lambda / FWHM(resolution_profile); DR3 :data:`GALAH_RESOLUTION`.
        meta: format ("galah_dr3" / "galah_dr4"), path, files, ccds (e.g. "1,2,3,4"), normalized,
        flux_unit, air_converted, air_source, mjd (UTMJD of the first CCD), snr (DR4: the largest of
        the per-CCD header SNR, also snr_ccd1..4; DR3: None), baryeff [km/s], frame
        ("barycentric" for DR4, whose header records the IRAF DOPCOR; "rest" for the DR3
        normalised spectrum, shifted by meta["rest_frame_shift_kms"]; None where the header is
        silent), object (DR3 OBJECT, DR4 OBJ_NAME), origin, pipe_ver, resolution_min,
        resolution_max, resolution_source; DR4 also rv (RVCOM, km/s), twomass_id, gaia_id.

    Raises
    ------
    SpectrumFormatError
        A requested CCD file missing (named), no CCD file at all, a file that is not a GALAH
        per-CCD spectrum (e.g. the night table), truncated or corrupt, mixed releases, a missing
        HDU (e.g. no normalised HDU), or a file whose wavelengths do not match its CCD digit.
    ValueError
        Bad ``ccds`` or ``release``.
    """
    if release is not None:
        rel = str(release).strip().lower()
        rel = rel if rel.startswith("galah_") else f"galah_{rel}"
        if rel not in ("galah_dr3", "galah_dr4"):
            raise ValueError(f"release must be 'galah_dr3' or 'galah_dr4', got {release!r}")
        release = rel
    sobject_id, files, label, want = _ccd_files(path, ccds)
    parts = [_read_ccd(p, k, bool(normalized), release) for k, p in files.items()]
    if 0 in files and want is not None and parts[0]["ccd"] not in want:
        names = ", ".join(f"CCD {k}" for k in want)
        raise SpectrumFormatError(
            f"{label}: requested GALAH {names} not found (this file is CCD {parts[0]['ccd']})"
        )
    rels = {p["release"] for p in parts}
    if len(rels) > 1:
        raise SpectrumFormatError(f"{label}: CCD files of different releases {sorted(rels)}")
    rel = rels.pop()
    by_ccd = {}
    for p in parts:
        if p["ccd"] in by_ccd:
            raise SpectrumFormatError(f"{label}: two files hold CCD {p['ccd']}")
        by_ccd[p["ccd"]] = p
    parts = [by_ccd[k] for k in sorted(by_ccd)]
    h0 = parts[0]["header"]

    airs = [p["air"] for p in parts]
    is_air = all(a is not False for a in airs)  # header silent (None) -> GALAH convention: air
    air_source = "header" if any(a is not None for a in airs) else "GALAH convention (header silent)"
    wave = np.concatenate([to_vacuum(p["wave"], is_air) for p in parts])
    flux = np.concatenate([p["flux"] for p in parts])
    ivar = np.concatenate([p["ivar"] for p in parts])

    meta = {
        "format": rel, "path": str(path), "files": ",".join(Path(files[k]).name for k in files),
        "ccds": ",".join(str(p["ccd"]) for p in parts), "normalized": bool(normalized),
        "flux_unit": "normalized" if normalized else "counts", "hdu": parts[0]["hdu"],
        "air_converted": is_air, "air_source": air_source,
        "mjd": scalar(hget(h0, "UTMJD", "MJD", "MJD-OBS")),
        "origin": scalar(hget(h0, "ORIGIN")), "pipe_ver": scalar(hget(h0, "PIPE_VER")),
        "baryeff": scalar(hget(h0, "BARYEFF")),
        "n_masked": int(np.sum(ivar == 0)),
    }
    if meta["pipe_ver"] is not None:
        meta["pipe_ver"] = str(meta["pipe_ver"])
    if rel == "galah_dr3":
        meta["object"] = scalar(hget(h0, "OBJECT"))
        meta["snr"] = None
        if normalized:
            meta["frame"] = "rest"
            meta["rest_frame_shift_kms"] = float(np.median([p["shift"] for p in parts]))
        else:
            meta["frame"] = None
    else:
        snrs = {}
        for p in parts:
            v = scalar(hget(p["header"], "SNR"))
            meta[f"snr_ccd{p['ccd']}"] = v
            if isinstance(v, int | float) and np.isfinite(v):
                snrs[p["ccd"]] = float(v)
        meta["snr"] = max(snrs.values()) if snrs else None
        meta["object"] = scalar(hget(h0, "OBJ_NAME", "OBJECT"))
        meta["twomass_id"] = scalar(hget(h0, "2MASS_ID"))
        meta["gaia_id"] = scalar(hget(h0, "GAIA_ID"))
        rv = scalar(hget(h0, "RVCOM", "RV"))
        meta["rv"] = rv if isinstance(rv, int | float) and np.isfinite(rv) else None
        dopcor = any(str(k).upper().startswith("DOPCOR") for p in parts for k in p["header"])
        meta["frame"] = "barycentric" if dopcor else None

    resolution, rsrc, rmin, rmax = GALAH_RESOLUTION, "nominal (Sheinis et al. 2015)", None, None
    if rel == "galah_dr4":
        rs = []
        for p in parts:
            good = (p["ivar"] > 0) & np.isfinite(p["fwhm"]) & (p["fwhm"] > 0)
            rs.append(p["wave"][good] / p["fwhm"][good])  # air lambda / air FWHM [Angstrom]
        rs = np.concatenate(rs)
        if not rs.size:
            raise SpectrumFormatError(f"{label}: no pixel with a good flux and a positive resolution FWHM")
        resolution, rsrc = float(np.median(rs)), "resolution_profile (lambda / FWHM)"
        rmin, rmax = float(np.min(rs)), float(np.max(rs))
    meta.update(resolution_min=rmin, resolution_max=rmax, resolution_source=rsrc)
    sid = id if id is not None else sobject_id
    try:
        return Spectrum(wave=wave, flux=flux, ivar=ivar, id=sid, resolution=resolution, meta=meta)
    except ValueError as exc:
        raise SpectrumFormatError(f"{label}: cannot join the GALAH CCDs: {exc}") from exc
