"""Test helpers for the spectrum readers: files written in the real survey layouts, and the real files.

Each writer copies the HDU order, EXTNAMEs, the header keywords the readers use and the column
dtypes of the real file named in its docstring (../shared/data/survey-files/), fills it with a
known simulated spectrum, and returns the truth the reader must give back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests._shared import SHARED_DATA, requires_shared

_env = os.environ.get("JAXSPEC_SURVEY_FILES")
SURVEY_FILES = Path(_env) if _env else SHARED_DATA / "survey-files"
requires_survey = (
    pytest.mark.skipif(not SURVEY_FILES.is_dir(),
                       reason=f"real survey files not found at JAXSPEC_SURVEY_FILES={SURVEY_FILES}")
    if _env
    else requires_shared
)


def survey_file(rel: str) -> Path:
    """Path of a real survey file; skips the test with a clear reason when it is absent."""
    path = SURVEY_FILES / rel
    if not path.is_file():
        pytest.skip(f"real survey file {path} not found (set JAXSPEC_SURVEY_FILES or JAXSPEC_SHARED_DATA)")
    return path


def lines(wave, centers=None, depth=0.6, sigma=0.4):
    """Normalized spectrum: flat continuum 1 with Gaussian absorption lines at ``centers`` [A]."""
    wave = np.asarray(wave, dtype=np.float64)
    if centers is None:
        centers = np.linspace(wave.min(), wave.max(), 12)[1:-1]
    f = np.ones_like(wave)
    for c in centers:
        f -= depth * np.exp(-0.5 * ((wave - c) / sigma) ** 2)
    return f


APOGEE_WCS = {"CRVAL1": 4.179, "CDELT1": 6e-6, "CRPIX1": 1, "CTYPE1": "LOG-LINEAR", "DC-FLAG": 1}
APOGEE_NPIX = 8575


def apogee_wave():
    return 10.0 ** (4.179 + 6e-6 * np.arange(APOGEE_NPIX))


def _wcs_header(extra=None):
    from astropy.io import fits

    h = fits.Header()
    for k, v in APOGEE_WCS.items():
        h[k] = v
    for k, v in (extra or {}).items():
        h[k] = v
    return h


def write_apstar(path, nvisits=3):
    """apStar like apogee/apStar-r6-2M11194647+0820356.fits (HDU 1-7 (2+nvisits, 8575), 8 LSF, 9 RV table).

    With nvisits=1 the images are 1-D, as APOGEE writes single-visit files. Returns the truth dict.
    """
    from astropy.io import fits

    wave = apogee_wave()
    nrow = 1 if nvisits == 1 else 2 + nvisits
    scale = 100.0 * (1.0 + np.arange(nrow))[:, None]  # row r has continuum 100 (r + 1): rows are told apart
    flux = (scale * lines(wave)[None, :]).astype(np.float32)
    err = (0.01 * scale * np.ones(APOGEE_NPIX)).astype(np.float32)
    mask = np.zeros((nrow, APOGEE_NPIX), dtype=np.int16)
    gap = slice(3000, 3100)  # a chip gap as the pipeline writes it: zero flux, error 1e10, BADPIX
    flux[:, gap], err[:, gap], mask[:, gap] = 0.0, 1e10, 1
    mask[:, 100] |= 1 << 1  # CRPIX: bad by default
    mask[:, 200] |= 1 << 12  # SIG_SKYLINE: a warning, not masked by default
    mask[:, 300] |= 1 << 14  # NOT_ENOUGH_PSF: bad by default
    flux[:, 400] = np.nan
    err[:, 500] = 0.0
    h0 = fits.Header()
    h0["OBJID"] = "2M00000000+0000000"
    h0["TELESCOP"] = "apo25m"
    h0["NVISITS"] = nvisits
    h0["VHELIO"] = -42.4
    h0["VSCATTER"] = 0.11
    h0["SNR"] = 58.0
    for k in range(1, nvisits + 1):
        h0[f"JD{k}"] = 2456674.9 + k
        h0[f"VHELIO{k}"] = -42.0 - k
        h0[f"SNRVIS{k}"] = 30.0 + k
    for k, v in APOGEE_WCS.items():
        h0[k] = v
    sq = (lambda a: a[0]) if nrow == 1 else (lambda a: a)
    hdus = [fits.PrimaryHDU(header=h0)]
    for data, unit in ((flux, "Flux (10^-17 erg/s/cm^2/Ang)"), (err, "Error (10^-17 erg/s/cm^2/Ang)"),
                       (mask, "Flag Mask (bitwise)"), (flux * 0.1, "Sky (10^-17 erg/s/cm^2/Ang)"),
                       (err, "Sky error (10^-17 erg/s/cm^2/Ang)"), (np.ones_like(flux), "Telluric"),
                       (err * 0.01, "Telluric error")):
        hdus.append(fits.ImageHDU(sq(data), header=_wcs_header({"BUNIT": unit})))
    hdus.append(fits.ImageHDU(np.zeros(26), header=_wcs_header({"CTYPE1": "Parameters",
                                                                 "BUNIT": "LSF Coefficients"})))
    mjd = np.arange(56674, 56674 + nvisits, dtype=np.int32)[None, :]
    hdus.append(fits.BinTableHDU.from_columns([
        fits.Column("MJD", format=f"{nvisits}J", array=mjd),
        fits.Column("VHELIO", format=f"{nvisits}E", array=np.full((1, nvisits), -42.0, np.float32)),
        fits.Column("BINARY", format="2I", array=np.zeros((1, 2), np.int16)),
    ]))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return {"wave": wave, "flux": flux.astype(np.float64), "err": err.astype(np.float64), "gap": gap,
            "bad": [100, 300, 400, 500], "kept": [200], "id": "2M00000000+0000000", "nrow": nrow}


def write_aspcapstar(path):
    """aspcapStar like apogee/aspcapStar-r6-l30e.2-2M17334253-1654573.fits (HDU 1-3 1-D, 4 one-row table)."""
    from astropy.io import fits

    wave = apogee_wave()
    flux = lines(wave).astype(np.float32)
    err = np.full(APOGEE_NPIX, 0.02, np.float32)
    gap = slice(2900, 3050)
    flux[gap], err[gap] = 0.0, 0.0  # zero-filled chip gaps, as ASPCAP writes them
    flux[600] = np.nan
    h0 = fits.Header()
    h0["FERRE"] = "v461a"
    h0["OBJ"] = "2M17334253-1654573"
    h0["SNR"] = 186.5
    h0["NVISITS"] = 2
    h0["VHELIO"] = -72.95
    hdus = [fits.PrimaryHDU(header=h0)]
    for data in (flux, err, lines(wave).astype(np.float32)):
        hdus.append(fits.ImageHDU(data, header=_wcs_header()))
    param = np.array([[3788.4, 1.078, 0.222, 0.0046, 0.16, 0.32, 0.157, 0.63, 0.0]], np.float32)
    hdus.append(fits.BinTableHDU.from_columns([
        fits.Column("APOGEE_ID", format="18A", array=np.array(["2M17334253-1654573"])),
        fits.Column("SNR", format="E", array=np.array([186.5], np.float32)),
        fits.Column("ASPCAPFLAG", format="J", array=np.array([640], np.int32)),
        fits.Column("PARAM", format="9E", array=param),
        fits.Column("FPARAM", format="9E", array=param + 1),
    ]))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return {"wave": wave, "flux": flux.astype(np.float64), "err": err.astype(np.float64), "gap": gap,
            "bad": [600], "id": "2M17334253-1654573", "param": param[0].astype(np.float64)}


APVISIT_CHIPS = ((16954.4, 16472.8), (16435.1, 15857.1), (15810.7, 15143.3))  # red, green, blue; descending


def write_apvisit(path):
    """apVisit like apogee/apVisit-2M11194647+0820356-0.fits: HDU 1-8 (3, 4096), 4 = wavelength (float64)."""
    from astropy.io import fits

    wave = np.array([np.linspace(a, b, 4096) for a, b in APVISIT_CHIPS])  # descending within each chip
    flux = (250.0 * lines(wave.ravel()).reshape(3, 4096)).astype(np.float32)
    flux += np.array([0.0, 1000.0, 2000.0], np.float32)[:, None]  # chip offsets: ordering is checked
    err = np.full((3, 4096), 2.5, np.float32)
    mask = np.zeros((3, 4096), np.int16)
    mask[0, 10] = 1 << 0  # BADPIX in the red chip, 10th pixel from its red end
    mask[2, 4000] = 1 << 13  # SIG_TELLURIC: kept by default
    flux[1, 20] = np.inf
    err[2, 30] = 1e10
    h0 = fits.Header()
    h0["TELESCOP"] = "apo25m"
    h0["MJD5"] = 56674
    h0["JD-MID"] = 2456674.91327
    h0["OBJID"] = "2M11194647+0820356"
    h0["SNR"] = 38.76
    h0["VHELIO"] = -50.32
    h0["VRAD"] = -73.75
    h0["BC"] = 23.43
    img = {"CTYPE1": "Pixel", "CTYPE2": "Chip"}
    hdus = [fits.PrimaryHDU(header=h0)]
    for data, unit in ((flux, "Flux (10^-17 erg/s/cm^2/Ang)"), (err, "Flux Error (10^-17 erg/s/cm^2/Ang)"),
                       (mask, "Flag Mask (bitwise)"), (wave, "Wavelength (Ang)"), (flux * 0.1, "Sky"),
                       (err, "Sky Error"), (np.ones_like(flux), "Telluric"), (err * 0.01, "Telluric Error")):
        hdus.append(fits.ImageHDU(data, header=fits.Header({**img, "BUNIT": unit})))
    hdus.append(fits.ImageHDU(np.zeros((3, 14)), header=fits.Header({"BUNIT": "Wavelength Coefficients"})))
    hdus.append(fits.ImageHDU(np.zeros((3, 26)), header=fits.Header({"BUNIT": "LSF Coefficients"})))
    hdus.append(fits.BinTableHDU.from_columns([
        fits.Column("APOGEE_ID", format="18A", array=np.array(["2M11194647+0820356"])),
        fits.Column("MJD", format="J", array=np.array([56674], np.int32)),
    ]))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return {"wave": wave, "flux": flux.astype(np.float64), "err": err.astype(np.float64), "mask": mask}


def _lamost_primary(extra):
    from astropy.io import fits

    h = fits.Header()
    h["FILENAME"] = "med-58408-TD230151N343645T01_sp01-015.fits"
    h["OBSID"] = 681001015
    h["TELESCOP"] = "LAMOST"
    h["MJD"] = 58407
    h["OBJNAME"] = "1886955093649969280"
    h["DESIG"] = "LAMOST J230311.44+321335.5"
    h["HELIO_RV"] = 9.2
    for k, v in extra.items():
        h[k] = v
    return h


def _mrs_table(name, loglam, flux, ivar, masks, snr):
    from astropy.io import fits

    cols = [fits.Column("FLUX", "E", array=flux), fits.Column("IVAR", "E", array=ivar),
            fits.Column("LOGLAM", "E", array=loglam)]
    cols += [fits.Column(k, "I", array=v) for k, v in masks.items()]
    h = fits.BinTableHDU.from_columns(cols, name=name)
    h.header["SNR"] = snr
    return h


def write_lamost_mrs(path, exposures=("84107311", "84107335"), vacuum=True):
    """med-*.fits like lamost/med-58408-...-015.fits: 'Information' primary, COADD_B, COADD_R, then B-*/R-*.

    Tables are one pixel per row with FLUX, IVAR, LOGLAM (float32) and ANDMASK/ORMASK (coadds) or
    PIXMASK (exposures), as in DR7. Returns the truth per arm.
    """
    from astropy.io import fits

    truth = {}
    hdus = [fits.PrimaryHDU(header=_lamost_primary({"EXTNAME": "Information", "VACUUM": vacuum}))]
    for arm, (lo, hi, n, snr) in {"B": (3.68966, 3.73063, 4101, 120.75),
                                  "R": (3.79884, 3.83571, 3692, 280.75)}.items():
        loglam = np.linspace(lo, hi, n).astype(np.float32)
        wave = 10.0 ** loglam.astype(np.float64)
        flux = (1000.0 * lines(wave)).astype(np.float32)
        ivar = np.full(n, 1e-2, np.float32)
        andmask, ormask = np.zeros(n, np.int16), np.zeros(n, np.int16)
        andmask[50], ormask[60], ivar[70], flux[80] = 4, 8, 0.0, np.nan
        truth[arm] = {"wave": wave, "flux": flux.astype(np.float64), "ivar": ivar.astype(np.float64),
                      "and_bad": [50, 70, 80], "or_bad": [60, 70, 80], "snr": snr}
        masks = {"ANDMASK": andmask, "ORMASK": ormask}
        hdus.append(_mrs_table(f"COADD_{arm}", loglam, flux, ivar, masks, snr))
    for i, lmjm in enumerate(exposures):
        for arm in ("B", "R"):
            t = truth[arm]
            pix = np.zeros(t["wave"].size, np.int16)
            pix[90 + i] = 1
            loglam = np.log10(t["wave"]).astype(np.float32)
            hdus.append(_mrs_table(f"{arm}-{lmjm}", loglam, (t["flux"] * (i + 2)).astype(np.float32),
                                   t["ivar"].astype(np.float32), {"PIXMASK": pix}, 40.0 + i))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return truth


def write_lamost_lrs(path, vacuum=True):
    """spec-*.fits like lamost/spec-58397-...-031.fits: primary (5, 3909) float32 flux/ivar/wave/and/or."""
    from astropy.io import fits

    n = 3909
    wave = (10.0 ** (3.5682 + 1e-4 * np.arange(n))).astype(np.float32)
    flux = (5000.0 * lines(wave.astype(np.float64), sigma=3.0)).astype(np.float32)
    ivar = np.full(n, 1e-4, np.float32)
    andmask, ormask = np.zeros(n, np.float32), np.zeros(n, np.float32)
    andmask[100], ormask[200], ivar[300], flux[400] = 2, 16, 0.0, np.nan
    extra = {"EXTEN0": "Flux, Inverse, Wavelength, Andmask, Ormask", "EXTNAME": "Flux", "CRVAL1": 3.5682,
             "CD1_1": 1e-4, "CRPIX1": 1, "CTYPE1": "LINEAR", "DC-FLAG": 1, "VACUUM": vacuum,
             "SNRU": 23.25, "SNRG": 153.72, "SNRR": 241.09, "SNRI": 320.95, "SNRZ": 259.11,
             "OBSID": 677503031, "Z": -6.4e-06, "CLASS": "STAR", "SUBCLASS": "G3"}
    data = np.vstack([flux, ivar, wave, andmask, ormask])
    fits.PrimaryHDU(data, header=_lamost_primary(extra)).writeto(path, overwrite=True)
    return {"wave": wave.astype(np.float64), "flux": flux.astype(np.float64), "ivar": ivar.astype(np.float64),
            "and_bad": [100, 300, 400], "id": "677503031"}


def write_boss(path):
    """SDSS BOSS spec-PLATE-MJD-FIBER like sdss/spec-3586-55181-0500.fits: empty primary, COADD table."""
    from astropy.io import fits

    n = 4625
    loglam = (3.5516 + 1e-4 * np.arange(n)).astype(np.float32)
    wave = 10.0 ** loglam.astype(np.float64)
    flux = (50.0 * lines(wave, sigma=3.0)).astype(np.float32)
    ivar = np.full(n, 4.0, np.float32)
    and_mask = np.zeros(n, np.int32)
    and_mask[10], ivar[20], flux[30] = 1 << 23, 0.0, np.nan
    h0 = fits.Header({"TELESCOP": "SDSS 2.5-M", "MJD": 55181, "VACUUM": True, "DC-FLAG": 1,
                      "BUNIT": "1E-17 erg/cm^2/s/Ang"})
    cols = [fits.Column("flux", "E", array=flux), fits.Column("loglam", "E", array=loglam),
            fits.Column("ivar", "E", array=ivar), fits.Column("and_mask", "J", array=and_mask),
            fits.Column("or_mask", "J", array=and_mask), fits.Column("wdisp", "E", array=np.ones(n, "f4"))]
    spall = fits.BinTableHDU.from_columns([fits.Column("PLATE", "J", array=np.array([3586], np.int32))],
                                          name="SPALL")
    coadd = fits.BinTableHDU.from_columns(cols, name="COADD")
    fits.HDUList([fits.PrimaryHDU(header=h0), coadd, spall]).writeto(path, overwrite=True)
    return {"wave": wave, "flux": flux.astype(np.float64), "ivar": ivar.astype(np.float64),
            "bad": [10, 20, 30]}


def write_image(path, *, ctype="LINEAR", crval=5000.0, cdelt=0.05, n=2000, crpix=1.0, extra=None,
                err_name="ERR", use_cd=False):
    """1-D image spectrum (GALAH/SALT-like): primary flux with a WCS, an error HDU named ``err_name``."""
    from astropy.io import fits

    p = np.arange(n, dtype=np.float64)
    x = crval + cdelt * (p + 1 - crpix)
    wave = 10.0**x if ctype == "LOG-LINEAR" else x
    flux = lines(np.sort(wave)).astype(np.float32)
    flux = flux if wave[-1] > wave[0] else flux[::-1].copy()
    err = np.full(n, 0.01, np.float32)
    flux[5] = np.nan
    err[7] = -1.0
    h = fits.Header({"CTYPE1": ctype, "CRVAL1": crval, "CRPIX1": crpix, "OBJECT": "HD 222259A"})
    h["CD1_1" if use_cd else "CDELT1"] = cdelt
    for k, v in (extra or {}).items():
        h[k] = v
    hdus = [fits.PrimaryHDU(flux, header=h)]
    if err_name is not None:
        hdus.append(fits.ImageHDU(err, header=h.copy(), name=err_name))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return {"wave": wave, "flux": flux.astype(np.float64), "err": err.astype(np.float64), "bad": [5, 7]}
