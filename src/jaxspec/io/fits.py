"""Generic FITS spectrum readers: a 1-D image with a wavelength WCS, and a binary table.

astropy is imported inside the functions (lazy); the shared FITS helpers live in ``_fitsutil``.
"""

from __future__ import annotations

import numpy as np

from jaxspec.io._fitsutil import (
    fits_errors,
    header_air,
    object_id,
    open_fits,
    resolve_air,
    scalar,
    to_vacuum,
    unit_factor,
    wcs_wavelength,
)
from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, clean_pixels

__all__ = ["read_fits_image", "read_fits_table", "read_fits_table_rows", "wcs_wavelength"]

# Column aliases, lower case, in order of preference.
WAVE_COLUMNS = ("wave", "wavelength", "lambda", "lam", "wl", "loglam")
FLUX_COLUMNS = ("flux", "spec", "f", "fluxes")
ERR_COLUMNS = ("err", "error", "sigma", "uncertainty", "flux_err", "e_flux", "error_flux")
IVAR_COLUMNS = ("ivar", "inverse_variance", "flux_ivar")
MASK_COLUMNS = ("mask", "and_mask", "andmask", "pixmask")


def _find_hdu(hdul, hdu, path):
    try:
        return hdul[hdu]
    except (KeyError, IndexError) as exc:
        names = [h.name for h in hdul]
        raise SpectrumFormatError(f"{path}: no HDU {hdu!r} (file has {names})") from exc


def _is_image(h):
    return h.is_image and h.data is not None and h.data.size > 0


_ERR_NAMES = ("ERR", "ERROR", "SIGMA", "UNCERT", "NOISE", "STDDEV")
_IVAR_NAMES = ("IVAR", "INVVAR", "INVERSE")
_MASK_NAMES = ("MASK", "BADPIX", "DQ", "FLAG")


def _classify(h):
    """'ivar' / 'err' / 'relerr' / 'mask' / None for an image HDU, from EXTNAME then BUNIT text."""
    for text in (h.name.upper(), str(h.header.get("BUNIT", "")).upper()):
        if any(k in text for k in _IVAR_NAMES):
            return "ivar"
        if "RELATIVE" in text and any(k in text for k in _ERR_NAMES):
            return "relerr"  # error / flux, as in GALAH DR4 'relative_error'
        if any(k in text for k in _ERR_NAMES):
            return "err"
        if any(k in text for k in _MASK_NAMES) and h.data is not None and h.data.dtype.kind in "iub":
            return "mask"
    return None


def read_fits_image(path, hdu=None, err_hdu=None, ivar_hdu=None, *, air=None, id=None) -> Spectrum:
    """Read a 1-D FITS image spectrum with a linear or log-linear wavelength WCS.

    Parameters
    ----------
    path : str or Path
    hdu : int or str, optional
        Flux HDU; default the first HDU with a 1-D image (a (1, P) image is accepted).
    err_hdu, ivar_hdu : int or str, optional
        HDU holding the 1-sigma error or the inverse variance (same length). By default another
        1-D image HDU whose EXTNAME or BUNIT says ERR/ERROR/SIGMA/UNCERT (error), RELATIVE ERROR
        (error / flux) or IVAR (inverse variance) is used; an integer EXTNAME MASK/DQ/FLAG HDU is
        a bad-pixel mask (nonzero = bad).
        With none found, unit weights are used and ``meta["ivar_assumed"] = True``.
    air : bool, optional
        Used only when the header is silent (VACUUM, AIRORVAC, CTYPE1 'AWAV'/'WAVE'); default
        vacuum, recorded in ``meta["air_source"]``.
    id : str, optional
        Default: header OBJID/APOGEE_ID/OBSID/OBJNAME/OBJECT, else the file stem.

    Returns
    -------
    Spectrum with wavelengths from :func:`wcs_wavelength` (Angstrom, vacuum), reversed when the
    WCS step is negative; ``resolution`` None.

    Raises
    ------
    SpectrumFormatError
        Not FITS, truncated, no 1-D image, no wavelength solution, a named HDU missing.
    """
    with open_fits(path, "FITS image spectrum") as hdul:
        return image_spectrum(hdul, path, hdu, err_hdu, ivar_hdu, air=air, id=id)


def image_spectrum(hdul, path, hdu=None, err_hdu=None, ivar_hdu=None, *, air=None, id=None) -> Spectrum:
    """:func:`read_fits_image` on an already open HDUList (lets callers read many HDUs of one file)."""
    if hdu is None:
        cands = [i for i, h in enumerate(hdul) if _is_image(h) and h.data.squeeze().ndim == 1]
        if not cands:
            shapes = [(h.name, getattr(h.data, "shape", None)) for h in hdul]
            raise SpectrumFormatError(f"{path}: no 1-D image HDU (HDUs: {shapes})")
        hdu = cands[0]
    fh = _find_hdu(hdul, hdu, path)
    if not _is_image(fh) or fh.data.squeeze().ndim != 1:
        shape = None if fh.data is None else fh.data.shape
        raise SpectrumFormatError(f"{path}: HDU {hdu!r} is not a 1-D image (shape {shape})")
    flux = np.asarray(fh.data, dtype=np.float64).ravel()
    header = fh.header
    wave, kind = wcs_wavelength(header, flux.size, path)
    err = ivar = mask = None
    used = {}
    if err_hdu is not None:
        err = np.asarray(_find_hdu(hdul, err_hdu, path).data, dtype=np.float64).ravel()
        used["err_hdu"] = str(err_hdu)
    elif ivar_hdu is not None:
        ivar = np.asarray(_find_hdu(hdul, ivar_hdu, path).data, dtype=np.float64).ravel()
        used["ivar_hdu"] = str(ivar_hdu)
    for i, h in enumerate(hdul):
        if h is fh or not _is_image(h) or h.data.size != flux.size:
            continue
        kind_h = _classify(h)
        if kind_h == "err" and err is None and ivar is None:
            err, used["err_hdu"] = np.asarray(h.data, dtype=np.float64).ravel(), h.name or str(i)
        elif kind_h == "relerr" and err is None and ivar is None:
            err = np.abs(flux) * np.asarray(h.data, dtype=np.float64).ravel()
            used["relative_err_hdu"] = h.name or str(i)
        elif kind_h == "ivar" and err is None and ivar is None:
            ivar, used["ivar_hdu"] = np.asarray(h.data, dtype=np.float64).ravel(), h.name or str(i)
        elif kind_h == "mask" and mask is None:
            mask, used["mask_hdu"] = np.asarray(h.data).ravel() != 0, h.name or str(i)
    for name, a in (("error", err), ("ivar", ivar), ("mask", mask)):
        if a is not None and a.size != flux.size:
            raise SpectrumFormatError(f"{path}: {name} HDU has {a.size} pixels, flux has {flux.size}")
    is_air, source = resolve_air(header_air(header, hdul[0].header), air, path)
    f, iv = clean_pixels(flux, err=err, ivar=ivar, mask=mask)
    meta = {"format": "fits_image", "path": str(path), "hdu": fh.name, "hdu_index": hdul.index(fh),
            "wcs": kind, "air_converted": is_air, "air_source": source, **used}
    if err is None and ivar is None:
        meta["ivar_assumed"] = True
    sid = id if id is not None else object_id(path, header, hdul[0].header)
    wave = to_vacuum(wave, is_air)
    if wave.size > 1 and wave[-1] < wave[0]:
        wave, f, iv = wave[::-1], f[::-1], iv[::-1]
    return Spectrum(wave=wave, flux=f, ivar=iv, id=sid, resolution=None, meta=meta)


def _match(names, wanted, aliases, path, what, required):
    lower = {n.lower(): n for n in names}
    if wanted is not None:
        if wanted.lower() not in lower:
            raise SpectrumFormatError(f"{path}: no {what} column {wanted!r} (columns: {list(names)})")
        return lower[wanted.lower()]
    for a in aliases:
        if a in lower:
            return lower[a]
    if required:
        raise SpectrumFormatError(
            f"{path}: no {what} column (looked for {', '.join(aliases)}; columns: {list(names)})"
        )
    return None


def _table_hdu(hdul, hdu, path, flux=None, wave=None):
    if hdu is not None:
        h = _find_hdu(hdul, hdu, path)
        if not hasattr(h, "columns"):
            raise SpectrumFormatError(f"{path}: HDU {hdu!r} is not a table")
        return h
    tables = [h for h in hdul if hasattr(h, "columns") and h.data is not None]
    fl = {flux.lower()} if flux is not None else set(FLUX_COLUMNS)
    wl = {wave.lower()} if wave is not None else set(WAVE_COLUMNS)
    for h in tables:
        names = {n.lower() for n in h.columns.names}
        if names & fl and names & wl:
            return h
    if not tables:
        raise SpectrumFormatError(f"{path}: no binary table HDU (HDUs: {[h.name for h in hdul]})")
    return tables[0]  # the column look-up then names what is missing


def read_fits_table_rows(path, hdu=None, *, wave=None, flux=None, err=None, ivar=None, mask=None,
                         air=None, id=None, wave_unit=None, rows=None) -> list[Spectrum]:
    """Every spectrum of a FITS binary table, as a list (see :func:`read_fits_table`).

    ``rows`` (iterable of int) selects rows of a one-spectrum-per-row table; a one-pixel-per-row
    table always gives one spectrum.
    """
    with open_fits(path, "FITS table spectrum") as hdul:
        h = _table_hdu(hdul, hdu, path, flux, wave)
        names = h.columns.names
        cw = _match(names, wave, WAVE_COLUMNS, path, "wavelength", True)
        cf = _match(names, flux, FLUX_COLUMNS, path, "flux", True)
        ci = _match(names, ivar, IVAR_COLUMNS, path, "ivar", ivar is not None)
        ce = None if ci is not None else _match(names, err, ERR_COLUMNS, path, "error", err is not None)
        cm = _match(names, mask, MASK_COLUMNS, path, "mask", mask is not None)
        data = h.data
        fcol = np.asarray(data[cf])
        per_row = fcol.ndim == 2
        if fcol.ndim > 2:
            raise SpectrumFormatError(
                f"{path}: flux column {cf!r} has shape {fcol.shape}; expected 1-D per row"
            )
        nrow = fcol.shape[0] if per_row else 1
        picked = list(range(nrow)) if rows is None else [int(r) for r in rows]
        for r in picked:
            if not -nrow <= r < nrow:
                raise SpectrumFormatError(f"{path}: row {r} out of range (table has {nrow} spectra)")
        unit = wave_unit if wave_unit is not None else h.columns[cw].unit
        log = cw.lower() == "loglam" or str(unit).strip().lower() in ("log10", "log(angstrom)", "dex")
        factor = 1.0 if log else unit_factor(unit, path, f"column {cw!r}")
        is_air, source = resolve_air(header_air(h.header, hdul[0].header), air, path)
        cols = {"wave": np.asarray(data[cw], dtype=np.float64), "flux": np.asarray(fcol, dtype=np.float64)}
        if ci is not None:
            cols["ivar"] = np.asarray(data[ci], dtype=np.float64)
        if ce is not None:
            cols["err"] = np.asarray(data[ce], dtype=np.float64)
        if cm is not None:
            cols["mask"] = np.asarray(data[cm]) != 0
        cd = _match(names, None, ("wdisp",), path, "wdisp", False)
        if cd is not None and log:
            cols["wdisp"] = np.asarray(data[cd], dtype=np.float64)
        base_id = id if id is not None else object_id(path, h.header, hdul[0].header)
        idcol = _match(names, None, ("objid", "obj_id", "object", "id", "name"), path, "id", False)
        ids = np.asarray(data[idcol]) if (per_row and idcol is not None and id is None) else None
        hname = h.name
    out = []
    for r in picked:
        c = {k: (v[r] if per_row and v.ndim == 2 else v) for k, v in cols.items()}
        if c["wave"].shape != c["flux"].shape:
            raise SpectrumFormatError(f"{path}: wavelength and flux columns differ in shape")
        w = 10.0 ** c["wave"] if log else c["wave"] * factor
        w = to_vacuum(w, is_air)
        f, iv = clean_pixels(c["flux"], err=c.get("err"), ivar=c.get("ivar"), mask=c.get("mask"))
        res = None if "wdisp" not in c else _wdisp_resolution(c["wave"], c["wdisp"])
        finite = np.isfinite(w)
        w, f, iv = w[finite], f[finite], iv[finite]
        res = None if res is None else res[finite]
        if w.size > 1 and not np.all(np.diff(w) > 0):
            order = np.argsort(w, kind="stable")
            w, f, iv = w[order], f[order], iv[order]
            res = None if res is None else res[order]
        sid = scalar(ids[r]) if ids is not None else (base_id if nrow == 1 else f"{base_id}[{r}]")
        meta = {"format": "fits_table", "path": str(path), "hdu": hname, "row": r if per_row else None,
                "columns": ",".join(x for x in (cw, cf, ci, ce, cm) if x), "air_converted": is_air,
                "air_source": source}
        if ci is None and ce is None:
            meta["ivar_assumed"] = True
        if res is not None:  # the median over the usable pixels, as the GALAH DR4 reader does
            rr = res[iv > 0] if np.any(iv > 0) else res
            meta.update(resolution_source="wdisp", resolution_min=float(rr.min()), resolution_max=float(rr.max()))
            res = float(np.median(rr))
        with fits_errors(path, f"table row {r}"):
            out.append(Spectrum(wave=w, flux=f, ivar=iv, id=str(sid), resolution=res, meta=meta))
    return out


def _wdisp_resolution(loglam, wdisp):
    """Per-pixel resolving power from SDSS/BOSS's ``wdisp``: the LSF's Gaussian sigma in pixels
    of the log10-lambda grid, R = 1 / (2.3548 sigma ln(10) dloglam). Pixels without a positive,
    finite wdisp take the median of the others; None when no pixel has one."""
    loglam = np.asarray(loglam, dtype=np.float64)
    good = np.isfinite(wdisp) & (wdisp > 0)
    if not good.any() or loglam.size < 2:
        return None
    step = float(np.median(np.abs(np.diff(loglam))))
    sig = np.where(good, wdisp, np.median(wdisp[good]))
    return 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)) * sig * step * np.log(10.0))


def read_fits_table(path, hdu=None, *, wave=None, flux=None, err=None, ivar=None, mask=None,
                    air=None, id=None, wave_unit=None, row: int = 0) -> Spectrum:
    """Read a spectrum from a FITS binary table of wavelength / flux / error columns.

    Parameters
    ----------
    path : str or Path
    hdu : int or str, optional
        Table HDU; default the first table with a flux-like and a wavelength-like column.
    wave, flux, err, ivar, mask : str, optional
        Column names (case-insensitive). Defaults try the aliases wave: wave, wavelength, lambda,
        lam, wl, loglam (log10 Angstrom); flux: flux, spec, f, fluxes; err: err, error, sigma,
        uncertainty, flux_err, e_flux, error_flux; ivar: ivar, inverse_variance, flux_ivar (used
        in preference to err); mask: mask, and_mask, andmask, pixmask (nonzero = bad).
    air : bool, optional
        Used when neither table nor primary header says (VACUUM, AIRORVAC); default vacuum.
    id : str, optional
        Default: header OBJID/APOGEE_ID/OBSID/OBJNAME/OBJECT, else the file stem (with "[row]"
        for multi-row tables, or an id/objid/name column).
    wave_unit : str, optional
        Overrides the column's TUNIT ("angstrom", "nm", "um", "log10").
    row : int
        Which row of a one-spectrum-per-row table (array columns); ignored for a
        one-pixel-per-row table.

    Returns
    -------
    Spectrum (wavelengths sorted increasing, vacuum Angstrom; flux in the units of the column, not
    converted; ``resolution`` from a ``wdisp`` column with a log10 wavelength column, as SDSS/BOSS's:
    the median over the usable pixels, its range in ``meta``; else None). This covers SDSS/BOSS ``spec-*.fits`` (COADD: loglam, flux, ivar,
    and_mask, wdisp; VACUUM = T).

    Raises
    ------
    SpectrumFormatError
        Not FITS, truncated, no table, a missing column, row out of range.
    """
    return read_fits_table_rows(path, hdu, wave=wave, flux=flux, err=err, ivar=ivar, mask=mask,
                                air=air, id=id, wave_unit=wave_unit, rows=[row])[0]
