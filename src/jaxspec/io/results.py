"""Results tables: one row per spectrum, written as FITS, HDF5 or ECSV (astropy tables).

Columns (in order): ``id``, ``source`` (file or stack row), every binary
parameter and ``<name>_err``, the single-star fit (``single_<name>``,
``single_<name>_err``), ``chi2``, ``dof``, ``n_iter``, ``converged``,
``single_chi2``, ``delta_chi2``, ``bic_single``, ``bic_binary``,
``is_binary``, ``flag``, ``n_pixels``, ``continuum_degree`` (the continuum's degree per
wavelength segment, e.g. ``"3,2,5,2"``), ``flag_message``, ``model`` (the model and pixels
``model=None`` chose; empty when a model was given) and ``error`` (why a
spectrum was not fitted; empty when it was). Parameters carry their units;
spectra that could not be read or fitted have NaN values, ``is_binary``
False, a flag bit (``read_error``, ``rejected`` or ``fit_error``, see
:data:`jaxspec.fit.result.FLAGS`) and the message in ``error``.

Table metadata: ``jaxspec_version`` and ``run_settings`` (a JSON string of
the settings of the run), plus whatever the caller adds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "failed_rows", "read_results", "results_table", "write_results"]

FORMATS = {".fits": "fits", ".fit": "fits", ".h5": "hdf5", ".hdf5": "hdf5", ".ecsv": "ascii.ecsv"}
_STATS = ("chi2", "dof", "n_iter", "converged", "single_chi2", "delta_chi2", "bic_single", "bic_binary",
          "is_binary", "flag", "n_pixels")
_INT = {"dof", "n_iter", "flag", "n_pixels"}
_BOOL = {"converged", "is_binary"}
_TEXT = ("id", "source", "continuum_degree", "flag_message", "model", "error")


def columns(names, units) -> list[tuple[str, str]]:
    """(column, unit) of a results table for parameters ``names`` with ``units``, in table order."""
    unit = dict(zip(names, units, strict=True))
    cols = [("id", ""), ("source", "")]
    for n in names:
        cols += [(n, unit[n]), (f"{n}_err", unit[n])]
    for n in names:
        if not n.endswith("_2") and n != "flux_ratio":
            cols += [(f"single_{n}", unit[n]), (f"single_{n}_err", unit[n])]
    cols += [(k, "") for k in _STATS] + [("continuum_degree", ""), ("flag_message", ""), ("model", ""),
                                         ("error", "")]
    return cols


def _empty_column(name, n):
    if name in _BOOL:
        return np.zeros(n, dtype=bool)
    if name in _INT:
        return np.zeros(n, dtype=np.int64)
    if name in _TEXT:
        return np.full(n, "", dtype=object)
    return np.full(n, np.nan)


def failed_rows(ids, sources, errors, flags, names, units) -> dict:
    """Columns for spectra that were not fitted: NaN values, the flag and the message."""
    n = len(ids)
    cols = {c: _empty_column(c, n) for c, _ in columns(names, units)}
    cols["id"] = np.asarray(ids, dtype=object)
    cols["source"] = np.asarray(sources, dtype=object)
    cols["error"] = np.asarray(errors, dtype=object)
    cols["flag"] = np.asarray(flags, dtype=np.int64)
    from jaxspec.fit.result import flag_messages

    cols["flag_message"] = np.asarray([flag_messages(f) for f in cols["flag"]], dtype=object)
    return cols


def fit_rows(fit, ids, sources) -> dict:
    """Columns of a batch :class:`~jaxspec.fit.result.BinaryFit` for the spectra ``ids``."""
    d = fit.to_dict()
    n = len(ids)
    cols = {}
    for c, _ in columns(fit.names, fit.units):
        if c == "id":
            cols[c] = np.asarray(ids, dtype=object)
        elif c == "source":
            cols[c] = np.asarray(sources, dtype=object)
        elif c == "error":
            cols[c] = np.full(n, "", dtype=object)
        elif c in ("flag_message", "continuum_degree"):
            cols[c] = np.asarray(d[c], dtype=object)
        elif c == "model":
            cols[c] = np.full(n, fit.model_info, dtype=object)
        else:
            cols[c] = np.asarray(d[c])
    return cols


def results_table(rows: dict, names, units, *, meta: dict | None = None):
    """An ``astropy.table.Table`` from columns (:func:`fit_rows`, :func:`failed_rows`) with units.

    Args:
        rows: ``{column: (n,) array}`` with every column of :func:`columns`.
        names, units: parameter names and their units (``BinaryFit.names``, ``.units``).
        meta: extra table metadata (JSON-able values).
    """
    from astropy.table import Table

    from jaxspec._version import __version__

    t = Table()
    for c, u in columns(names, units):
        v = rows[c]
        if c in _BOOL:
            v = np.asarray(v, dtype=bool)
        elif c in _INT:
            v = np.asarray(v, dtype=np.int64)
        elif c in _TEXT:
            v = np.asarray([str(x) for x in v], dtype=str)
            if v.dtype.itemsize == 0:
                v = v.astype("U1")
        else:
            v = np.asarray(v, dtype=np.float64)
        t[c] = v
        if u:
            t[c].unit = u
    t.meta["jaxspec_version"] = __version__
    for k, v in (meta or {}).items():
        t.meta[k] = v if isinstance(v, str | int | float | bool) else json.dumps(v, sort_keys=True)
    return t


def _format(path, format):
    if format is not None:
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot tell the results format from {str(path)!r}; use one of "
                         f"{sorted(FORMATS)} or pass format=")
    return FORMATS[suffix]


def write_results(table, path, *, format: str | None = None, overwrite: bool = True) -> Path:
    """Write a results table (by the file's extension: .fits, .h5/.hdf5, .ecsv).

    The file appears whole or not at all: it is written to a temporary name
    beside ``path`` and renamed.

    Args:
        table: an ``astropy.table.Table``, e.g. from :func:`results_table`.
        path: output file.
        format: astropy format name (``"fits"``, ``"hdf5"``, ``"ascii.ecsv"``);
            default from the extension (:data:`FORMATS`).
        overwrite: replace an existing file (default True).

    Returns:
        The path written.

    Raises:
        ValueError: an extension that names no format (and no ``format``).
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    import os

    path = Path(path)
    fmt = _format(path, format)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (overwrite=False)")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    kw = {"path": "results", "serialize_meta": True} if fmt == "hdf5" else {}
    try:
        import warnings

        with warnings.catch_warnings():
            # astropy warns that long meta keys become HIERARCH cards in FITS: that is intended
            warnings.filterwarnings("ignore", message=".*HIERARCH.*")
            warnings.filterwarnings("ignore", message=".*greater than 8 characters.*")
            # 'dex' has no FITS spelling; it is written as the string 'dex' and restored on reading
            warnings.filterwarnings("ignore", message=".*could not be saved in native FITS format.*")
            if fmt == "fits":
                _write_fits(table, tmp)
            else:
                table.write(tmp, format=fmt, overwrite=True, **kw)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _write_fits(table, path) -> None:
    from astropy.io import fits
    from astropy.io.fits.convenience import table_to_hdu

    hdu = table_to_hdu(table)
    # 'dex' has no FITS spelling, so astropy leaves TUNIT out; write it as text (read_results restores it)
    for i, c in enumerate(table.colnames, start=1):
        if table[c].unit is not None and str(table[c].unit) == "dex":
            hdu.header[f"TUNIT{i}"] = "dex"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def read_results(path, *, format: str | None = None):
    """Read a results table written by :func:`write_results` (an ``astropy.table.Table``).

    Args:
        path: a ``.fits``, ``.h5``/``.hdf5`` or ``.ecsv`` results file.
        format: astropy format name; default from the extension (:data:`FORMATS`).

    Returns:
        The table, with the parameters' units (``dex``, which FITS cannot
        spell, restored).
    """
    from astropy.table import Table

    fmt = _format(path, format)
    kw = {"path": "results"} if fmt == "hdf5" else {}
    import warnings

    import astropy.units as u

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not parse as fits unit.*")
        t = Table.read(path, format=fmt, **kw)
    for c in t.colnames:
        if isinstance(t[c].unit, u.UnrecognizedUnit) and str(t[c].unit) == "dex":
            t[c].unit = u.dex
    if fmt == "fits":
        # FITS upper-cases header keys; give back the names they were written with
        for key in list(t.meta):
            low = key.lower()
            if low in ("jaxspec_version", "run_settings") or low.startswith("survey_"):
                t.meta[low] = t.meta.pop(key)
        for k in ("comments", "COMMENT"):
            t.meta.pop(k, None)
    from astropy.table import MaskedColumn

    for c in t.colnames:
        if isinstance(t[c], MaskedColumn):  # FITS and ECSV readers mask NaN and empty strings
            kind = t[c].dtype.kind
            t[c] = t[c].filled("" if kind in "SU" else np.nan if kind == "f" else None)
        if t[c].dtype.kind == "S":
            t[c] = np.char.decode(np.asarray(t[c]), "utf-8")
    return t
