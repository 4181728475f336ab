"""The HDF5 survey stack: many spectra on one wavelength grid in one file.

Pack a survey once (:func:`write_stack`, or :class:`StackWriter` to append
file by file) and fit it with ``jaxspec survey`` or
:func:`jaxspec.survey.run_survey`, which reads it chunk by chunk.

Schema (format version 1; h5py, any HDF5 reader can read it)::

    /                     attrs: format = "jaxspec-stack", version = 1,
                                 air (bool, wavelengths in air; readers convert to vacuum),
                                 resolution (float, optional: one resolving power for all)
    /ids                  (N,) UTF-8 strings, unique spectrum identifiers
    /wave                 (P,) float64 wavelengths [A], strictly increasing, shared by all spectra
    /flux                 (N, P) float32 or float64, as written (chunked by rows)
    /ivar  or  /err       (N, P) inverse variance [1/flux^2] or 1-sigma error [flux]
                          (exactly one of them; ivar = 0 or non-finite err masks a pixel)
    /resolution           (N,) float64, optional: resolving power per spectrum
    /meta/<name>          (N,) optional per-spectrum columns (numbers or strings)

Values are stored exactly as given (no unit or dtype conversion), so a
write-read round trip is lossless.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

__all__ = ["Stack", "StackWriter", "read_stack", "stack_info", "write_stack"]

FORMAT = "jaxspec-stack"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class Stack:
    """Rows of an HDF5 stack (see the module docstring for the schema).

    Attributes:
        ids: (n,) spectrum identifiers (str).
        wave: (P,) vacuum wavelengths [A] (converted from air if the file says air).
        flux: (n, P) flux as stored (any units: values are written and read unchanged).
        ivar: (n, P) inverse variance or None (then ``err`` is set).
        err: (n, P) 1-sigma errors or None.
        resolution: (n,) resolving power per spectrum, or None.
        meta: ``{name: (n,) array}`` per-spectrum metadata.
        start: index of the first row in the file.
    """

    ids: np.ndarray
    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray | None
    err: np.ndarray | None
    resolution: np.ndarray | None
    meta: dict
    start: int = 0

    def __len__(self) -> int:
        return len(self.ids)


def _check_arrays(flux, wave, ivar, err, ids, resolution, meta):
    from jaxspec.physics.grid import check_wavelengths

    wave = check_wavelengths(wave, "wave", min_size=2)
    flux = np.asarray(flux)
    if flux.ndim != 2 or flux.shape[1] != wave.size:
        raise ValueError(f"flux must be (N, P) with P = {wave.size} (the length of wave), got {flux.shape}")
    if (ivar is None) == (err is None):
        raise ValueError("give exactly one of ivar or err")
    unc = np.asarray(ivar if ivar is not None else err)
    if unc.shape != flux.shape:
        raise ValueError(f"{'ivar' if ivar is not None else 'err'} has shape {unc.shape} but flux has "
                         f"{flux.shape}")
    n = flux.shape[0]
    ids = np.asarray([str(i) for i in (range(n) if ids is None else ids)], dtype=object)
    if ids.shape != (n,):
        raise ValueError(f"ids must have one entry per spectrum ({n}), got {ids.shape}")
    if resolution is not None and np.ndim(resolution) != 0:
        resolution = np.asarray(resolution, dtype=np.float64)
        if resolution.shape != (n,):
            raise ValueError(f"resolution must be a number or (N,) = ({n},), got {resolution.shape}")
    meta = {k: np.asarray(v) for k, v in (meta or {}).items()}
    for k, v in meta.items():
        if v.shape[:1] != (n,):
            raise ValueError(f"meta column {k!r} has shape {v.shape}; needs a leading axis of {n}")
    return flux, wave, unc, ids, resolution, meta


class StackWriter:
    """Write an HDF5 stack incrementally (context manager).

    Example::

        with StackWriter("survey.h5", wave, uncertainty="ivar") as w:
            for path in files:
                s = jaxspec.io.read_spectrum(path)          # on the same grid as ``wave``
                w.append(s.flux[None], s.ivar[None], ids=[s.id])

    Args:
        path: file to create (overwritten).
        wave: (P,) wavelengths [A], strictly increasing.
        uncertainty: ``"ivar"`` or ``"err"``: which one the rows carry.
        dtype, unc_dtype: storage dtypes of flux and of the uncertainty
            (default float32; ``unc_dtype`` defaults to ``dtype``).
        air: True if ``wave`` is in air (readers convert it to vacuum).
        resolution: one resolving power for all spectra (a number), or None.
        meta_columns: ``{name: dtype}`` of per-spectrum metadata columns
            (``str`` for strings) that :meth:`append` will receive.
        compression: h5py compression of flux and uncertainty (e.g.
            ``"gzip"``; default None: fastest reads).
        per_spectrum_resolution: store a resolving power per spectrum
            (``/resolution``, (N,)); :meth:`append` then needs ``resolution=``.
        rows_per_chunk: HDF5 chunk height (rows) of flux and uncertainty
            (default 64).
    """

    def __init__(self, path, wave, *, uncertainty: str = "ivar", dtype=np.float32, unc_dtype=None,
                 air: bool = False,
                 resolution: float | None = None, per_spectrum_resolution: bool = False,
                 meta_columns: dict | None = None, compression=None, rows_per_chunk: int = 64):
        import h5py

        from jaxspec.physics.grid import check_wavelengths

        if uncertainty not in ("ivar", "err"):
            raise ValueError(f"uncertainty must be 'ivar' or 'err', got {uncertainty!r}")
        wave = check_wavelengths(wave, "wave", min_size=2)
        self.path = Path(path)
        self._unc = uncertainty
        self._n = 0
        self._p = wave.size
        self._f = h5py.File(self.path, "w")
        f = self._f
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["air"] = bool(air)
        if resolution is not None:
            f.attrs["resolution"] = float(resolution)
        f.create_dataset("wave", data=wave)
        chunks = (max(1, int(rows_per_chunk)), self._p)
        for name, dt in (("flux", dtype), (uncertainty, dtype if unc_dtype is None else unc_dtype)):
            f.create_dataset(name, shape=(0, self._p), maxshape=(None, self._p), dtype=dt,
                             chunks=chunks, compression=compression)
        f.create_dataset("ids", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype())
        self._per_res = bool(per_spectrum_resolution)
        if self._per_res:
            f.create_dataset("resolution", shape=(0,), maxshape=(None,), dtype=np.float64)
        self._meta = dict(meta_columns or {})
        if self._meta:
            g = f.create_group("meta")
            for k, dt in self._meta.items():
                dt = h5py.string_dtype() if dt is str else np.dtype(dt)
                g.create_dataset(k, shape=(0,), maxshape=(None,), dtype=dt)

    def append(self, flux, unc, *, ids, resolution=None, meta: dict | None = None) -> None:
        """Append rows: ``flux`` and ``unc`` (the ivar or err chosen at creation) of shape (n, P).

        Args:
            flux: (n, P) flux (or (P,) for one row), in any units: stored as
                given, cast to the stack's dtype.
            unc: (n, P) inverse variance or 1-sigma errors, as chosen by
                ``uncertainty=`` at creation.
            ids: n identifiers (converted to str).
            resolution: resolving power, a number or (n,) per row; required
                (and only used) with ``per_spectrum_resolution=True``.
            meta: ``{name: (n,) array}`` for exactly the ``meta_columns``.

        Raises:
            ValueError: shape mismatches, a missing resolution or wrong meta columns.
        """
        flux = np.atleast_2d(np.asarray(flux))
        unc = np.atleast_2d(np.asarray(unc))
        n = flux.shape[0]
        if flux.shape != (n, self._p) or unc.shape != flux.shape:
            raise ValueError(f"rows must be (n, {self._p}); got flux {flux.shape}, {self._unc} {unc.shape}")
        ids = [str(i) for i in ids]
        if len(ids) != n:
            raise ValueError(f"{len(ids)} ids for {n} rows")
        a, b = self._n, self._n + n
        f = self._f
        for name, x in (("flux", flux), (self._unc, unc)):
            f[name].resize((b, self._p))
            f[name][a:b] = x
        f["ids"].resize((b,))
        f["ids"][a:b] = ids
        if self._per_res:
            if resolution is None:
                raise ValueError("this stack stores a resolution per spectrum: pass resolution=")
            f["resolution"].resize((b,))
            f["resolution"][a:b] = np.broadcast_to(np.asarray(resolution, dtype=np.float64), (n,))
        meta = meta or {}
        if set(meta) != set(self._meta):
            raise ValueError(f"meta must have exactly the columns {sorted(self._meta)}, got {sorted(meta)}")
        for k, v in meta.items():
            d = f["meta"][k]
            d.resize((b,))
            d[a:b] = np.asarray(v)
        self._n = b

    def close(self) -> None:
        """Record the number of spectra and close the file (idempotent; ``with`` calls it)."""
        if self._f:
            self._f.attrs["n_spectra"] = self._n
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_stack(path, flux, wave, *, ivar=None, err=None, ids=None, resolution=None, meta=None,
                air: bool = False, compression=None) -> Path:
    """Write spectra on one grid to an HDF5 stack (schema in the module docstring).

    Args:
        path: file to create (overwritten).
        flux: (N, P) flux in any units; stored as given, with its own dtype.
        wave: (P,) wavelengths [A], strictly increasing (vacuum unless ``air``).
        ivar, err: (N, P) inverse variance or 1-sigma errors (exactly one).
        ids: N identifiers (default "0", "1", ...).
        resolution: resolving power, a number or (N,) per spectrum.
        meta: ``{name: (N,) array}`` per-spectrum metadata.
        air: True if ``wave`` is in air.
        compression: h5py compression of flux and uncertainty (e.g. "gzip").

    Returns:
        The path written.

    Raises:
        ValueError: shape mismatches, bad wavelengths, both or neither of ivar and err.
    """
    flux, wave, unc, ids, resolution, meta = _check_arrays(flux, wave, ivar, err, ids, resolution, meta)
    per = resolution is not None and np.ndim(resolution) == 1
    cols = {k: (str if v.dtype.kind in "OUS" else v.dtype) for k, v in meta.items()}
    single_res = None if (resolution is None or per) else float(resolution)
    with StackWriter(path, wave, uncertainty="ivar" if ivar is not None else "err", dtype=flux.dtype,
                     unc_dtype=unc.dtype, air=air, resolution=single_res,
                     per_spectrum_resolution=per, meta_columns=cols, compression=compression) as w:
        w.append(flux, unc, ids=ids,
                 resolution=resolution if per else None,
                 meta={k: (v.astype(str) if cols[k] is str else v) for k, v in meta.items()})
    return Path(path)


def _open(path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from err
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise ValueError(f"{path}: not a jaxspec stack (attribute format={FORMAT!r} missing)")
    if "flux" not in f or "wave" not in f or ("ivar" not in f and "err" not in f):
        f.close()
        raise ValueError(f"{path}: a jaxspec stack needs datasets wave, flux and ivar or err")
    return f


def stack_info(path) -> dict:
    """Size and contents of a stack without reading the spectra.

    Args:
        path: the stack file.

    Returns:
        ``{"n", "n_pixels", "uncertainty", "air", "resolution", "meta", "wave_range"}``:
        the number of spectra N and pixels P, ``"ivar"`` or ``"err"``, whether
        the file's wavelengths are in air, the resolving power (a number,
        ``"per spectrum"`` or None), the metadata column names and
        ``(first, last)`` wavelength [A, vacuum].

    Raises:
        ValueError: not a jaxspec stack.
    """
    with _open(path) as f:
        wave = _vacuum(f)
        res = ("per spectrum" if "resolution" in f else
               float(f.attrs["resolution"]) if "resolution" in f.attrs else None)
        return {"n": int(f["flux"].shape[0]), "n_pixels": int(f["flux"].shape[1]),
                "uncertainty": "ivar" if "ivar" in f else "err", "air": bool(f.attrs.get("air", False)),
                "resolution": res, "meta": sorted(f["meta"]) if "meta" in f else [],
                "wave_range": (float(wave[0]), float(wave[-1]))}


def _vacuum(f):
    wave = f["wave"][()]
    if bool(f.attrs.get("air", False)):
        from jaxspec.physics.airvac import air_to_vacuum

        wave = np.asarray(air_to_vacuum(wave))
    return wave


def read_stack(path, start: int = 0, stop: int | None = None) -> Stack:
    """Read rows ``start:stop`` of an HDF5 stack (all by default).

    Args:
        path: the stack file.
        start, stop: row range (``stop=None``: to the end).

    Returns:
        :class:`Stack` with arrays exactly as stored (wavelengths converted to
        vacuum if the stack says air).

    Raises:
        ValueError: not a jaxspec stack, missing datasets, rows out of range.
    """
    with _open(path) as f:
        n = f["flux"].shape[0]
        stop = n if stop is None else int(stop)
        if not 0 <= start <= stop <= n:
            raise ValueError(f"rows {start}:{stop} are outside the stack's {n} spectra")
        ids = np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in f["ids"][start:stop]],
                         dtype=object)
        res = None
        if "resolution" in f:
            res = f["resolution"][start:stop]
        elif "resolution" in f.attrs:
            res = np.full(stop - start, float(f.attrs["resolution"]))
        meta = {}
        if "meta" in f:
            for k, d in f["meta"].items():
                v = d[start:stop]
                if v.dtype.kind == "O":
                    v = np.asarray([s.decode() if isinstance(s, bytes) else s for s in v], dtype=object)
                meta[k] = v
        return Stack(ids=ids, wave=_vacuum(f), flux=f["flux"][start:stop],
                     ivar=f["ivar"][start:stop] if "ivar" in f else None,
                     err=f["err"][start:stop] if "err" in f else None,
                     resolution=res, meta=meta, start=int(start))
