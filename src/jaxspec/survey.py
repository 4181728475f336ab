"""Fit a whole survey: resumable, failure-isolated, serial or on Dask.

:func:`run_survey` fits every spectrum of an input (an HDF5 stack, a
directory of spectrum files, a text file listing files, or a list of paths)
and writes one results table (:mod:`jaxspec.io.results`).

How a run survives crashes: the input is split into chunks of
``chunk_size`` spectra; each finished chunk's rows are written to
``<work_dir>/chunks/chunk-NNNNNN.h5`` under a temporary name and renamed, so a
chunk file exists whole or not at all. A run that is killed at any moment
(even ``kill -9``) and started again with the same arguments skips the chunks
whose files exist and fits only the rest; the final table is assembled from
the chunk files in order, so it is the same table an uninterrupted run
writes. ``<work_dir>/manifest.json`` records the run's settings (a restart
with different settings is refused) and ``<work_dir>/events.jsonl`` one line
per computed chunk; ``<work_dir>/survey.log`` is the run's log.

How a run survives bad data: every spectrum is read and checked on its own.
A file that cannot be read gets the ``read_error`` flag, a spectrum that
cannot be fitted as given (no overlap with the model's wavelengths, all
pixels masked, wrong shapes, negative errors) gets ``rejected``, a fit that
raises gets ``fit_error``; each with its message in the ``error`` column.
The other spectra are fitted.

Scale-out: ``workers > 1`` starts a Dask ``LocalCluster`` of that many
processes; ``scheduler=`` connects to an existing Dask scheduler (e.g. one
started by dask-jobqueue on a SLURM cluster). Each worker loads the model
once and fits its chunks with :func:`jaxspec.fit_binary_batch`; on a worker
with several accelerators each batch is also sharded over them (``devices="auto"``).
Workers read their chunks themselves, so inputs and the work directory must
be on a file system they all see.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path

import numpy as np

__all__ = ["fit_spectra", "list_inputs", "run_survey"]

log = logging.getLogger("jaxspec.survey")
_NOT_FITTED = 32 | 64 | 128  # FLAGS read_error | rejected | fit_error
SPECTRUM_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fts", ".fz", ".npz")


# ------------------------------------------------------------------ inputs


@dataclasses.dataclass(frozen=True)
class _Input:
    kind: str  # "stack" or "files"
    path: str | None  # the stack
    files: tuple  # the files
    n: int


def _is_stack(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        if fh.read(8) != b"\x89HDF\r\n\x1a\n":
            return False
    return True


def list_inputs(source) -> _Input:
    """What a survey input holds: a stack, a directory, a text file listing files, or a list of paths.

    Args:
        source: a path (an HDF5 stack, a directory of spectrum files, one
            spectrum file, or a text file with one path per line, ``#``
            comments, relative to the list) or a list of paths.

    Returns:
        A record with ``kind`` (``"stack"`` or ``"files"``), ``path`` (the
        stack), ``files`` (absolute paths) and ``n`` (number of spectra).

    Raises:
        ValueError: the input does not exist, or a directory/list has no spectrum files.
    """
    if isinstance(source, list | tuple):
        files = tuple(str(Path(p)) for p in source)
    else:
        path = Path(source)
        if not path.exists():
            raise ValueError(f"survey input {str(path)!r} does not exist")
        if path.is_dir():
            files = tuple(str(p) for p in sorted(path.iterdir())
                          if p.is_file() and p.name.lower().endswith(SPECTRUM_SUFFIXES))
            if not files:
                raise ValueError(f"directory {str(path)!r} holds no spectrum files "
                                 f"({', '.join(SPECTRUM_SUFFIXES)})")
        elif _is_stack(path):
            from jaxspec.io.stack import stack_info

            return _Input("stack", str(path.resolve()), (), stack_info(path)["n"])
        elif path.name.lower().endswith(SPECTRUM_SUFFIXES):
            files = (str(path),)
        else:  # a text file with one path per line (relative paths are relative to the list)
            lines = [ln.strip() for ln in path.read_text().splitlines()]
            files = tuple(str(p if Path(p).is_absolute() else path.parent / p)
                          for p in lines if p and not p.startswith("#"))
    if not files:
        raise ValueError(f"survey input {source!r} lists no files")
    return _Input("files", None, tuple(str(Path(f).resolve()) for f in files), len(files))


# ------------------------------------------------------------------ models on workers

_MODELS: dict = {}


def _load_model(spec):
    """A spectral model from its description: None (the bundled default) or an emulator HDF5 path."""
    if spec is None:
        from jaxspec.emulator.default import default_model

        return default_model()
    if isinstance(spec, os.PathLike):
        spec = str(spec)
    if not isinstance(spec, str):
        return spec  # an in-process model object (serial runs)
    if spec not in _MODELS:
        from jaxspec.emulator.emulator import Emulator

        _MODELS[spec] = Emulator.load(spec)
    return _MODELS[spec]


def _describe_model(model, work_dir: Path, name: str, need_file: bool):
    """(description for settings, value passed to workers) of a model argument."""
    if model is None:
        return "default", None
    if isinstance(model, str | os.PathLike):
        p = str(Path(model).resolve())
        return p, p
    if need_file:
        if not hasattr(model, "save"):
            raise ValueError(f"{name} must be an Emulator or an emulator file to run on Dask workers "
                             f"(got {type(model).__name__}); use workers=1")
        path = work_dir / f"{name}.h5"
        if not path.exists():
            model.save(path)
        return f"{name}.h5 (saved from {type(model).__name__})", str(path)
    return f"{type(model).__name__} object", model


# ------------------------------------------------------------------ one chunk


def _read_entries(inp: _Input, a: int, b: int, settings: dict):
    """Spectra a..b-1 as dicts (id, source, wave, flux, ivar, err, resolution) or failure dicts."""
    out = _read_raw(inp, a, b, settings)
    if settings.get("resolution_override") is not None:
        for e in out:
            e["resolution"] = settings["resolution_override"]
    return [_with_instrument(e, settings.get("instrument")) for e in out]


def _with_instrument(e: dict, name):
    """An entry checked against the instrument preset given (a contradiction rejects it, with the
    reason) and, where the file states no resolution, given the preset's."""
    from jaxspec.fit.result import FLAGS
    from jaxspec.instruments import INSTRUMENTS, check_instrument

    if "wave" not in e:
        return e
    detected = e.pop("instrument", None)
    if name is not None:
        try:
            check_instrument(name, e["wave"], detected=detected)
        except ValueError as err:
            return dict(id=e["id"], source=e["source"], flag=FLAGS["rejected"], error=str(err))
    if e.get("resolution") is None and name is not None:
        e["resolution"] = INSTRUMENTS[name].resolution
    return e


def _read_raw(inp: _Input, a: int, b: int, settings: dict):
    from jaxspec.fit.result import FLAGS

    out = []
    if inp.kind == "stack":
        for start, s in _read_stack_rows(inp.path, a, b):
            if isinstance(s, Exception):
                out.append(dict(id=_stack_id(inp.path, start), source=f"{Path(inp.path).name}[{start}]",
                                flag=FLAGS["read_error"], error=f"{type(s).__name__}: {s}"))
                continue
            for i in range(len(s)):
                out.append(dict(id=str(s.ids[i]), source=f"{Path(inp.path).name}[{start + i}]", wave=s.wave,
                                flux=s.flux[i], ivar=None if s.ivar is None else s.ivar[i],
                                err=None if s.err is None else s.err[i],
                                resolution=None if s.resolution is None else float(s.resolution[i])))
        return out
    from jaxspec.instruments import detect_instrument
    from jaxspec.io.read import read_spectrum

    for path in inp.files[a:b]:
        name = Path(path).name
        try:
            sp = read_spectrum(path, **(settings.get("read_options") or {}))
        except Exception as err:  # noqa: BLE001 - any unreadable file is flagged, never stops the run
            out.append(dict(id=Path(path).name.split(".")[0], source=name, flag=FLAGS["read_error"],
                            error=f"{type(err).__name__}: {err}"))
            continue
        out.append(dict(id=sp.id, source=name, wave=sp.wave, flux=sp.flux, ivar=sp.ivar, err=None,
                        resolution=sp.resolution, instrument=detect_instrument(sp.meta)))
    return out


def _read_stack_rows(path, a: int, b: int):
    """``[(start, Stack or exception)]`` for rows a..b-1: one read, or, when that fails (a corrupt
    HDF5 chunk), one read per row, so that only the unreadable rows are lost. When no row can be
    read the error is raised: the stack as a whole is unreadable, and the run stops (finished
    chunks are kept; a rerun retries) rather than flagging every spectrum."""
    from jaxspec.io.stack import read_stack

    try:
        return [(a, read_stack(path, a, b))]
    except Exception as whole:  # noqa: BLE001 - retried row by row
        rows = []
        for i in range(a, b):
            try:
                rows.append((i, read_stack(path, i, i + 1)))
            except Exception as err:  # noqa: BLE001 - an unreadable row is flagged, never stops the run
                rows.append((i, err))
        if all(isinstance(s, Exception) for _, s in rows):
            raise whole
        return rows


def _stack_id(path, i: int) -> str:
    """The id of row ``i`` of a stack whose spectrum could not be read (its index if the id cannot be)."""
    from jaxspec.io.stack import _open

    try:
        with _open(path) as f:
            v = f["ids"][i]
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:  # noqa: BLE001
        return str(i)


_ALL_MASKED = "all pixels are masked (non-finite flux or errors, or ivar = 0)"


def _entry_arrays(e: dict):
    """(wave, flux) of an entry, or an error message for mismatched shapes."""
    wave = np.asarray(e["wave"], dtype=np.float64)
    flux = np.asarray(e["flux"])
    if flux.ndim != 1 or flux.shape != wave.shape:
        return f"flux has shape {flux.shape} but wave has {wave.shape}"
    return wave, flux


def _check_entry(e: dict, model_wave: np.ndarray):
    """Trim a spectrum to the model's wavelength range and validate it; returns an error message or None."""
    from jaxspec.fit.binary import prepare_spectrum

    arrays = _entry_arrays(e)
    if isinstance(arrays, str):
        return arrays
    wave, flux = arrays
    lo, hi = model_wave[0], model_wave[-1]
    keep = (wave >= lo) & (wave <= hi)
    if keep.sum() < 10:
        return (f"no overlap with the model's wavelength range: spectrum {np.nanmin(wave):.2f}-"
                f"{np.nanmax(wave):.2f} A, model {lo:.2f}-{hi:.2f} A")
    unc = {k: (None if e[k] is None else np.asarray(e[k])[keep]) for k in ("err", "ivar")}
    try:
        f, w, iv = prepare_spectrum(flux[keep], wave[keep], **unc)
    except ValueError as err:
        return str(err)
    if not np.any(iv > 0):
        return _ALL_MASKED
    e.update(wave=w, flux=f, ivar=iv, err=None)
    return None


def _choose_model(e: dict):
    """``model=None``: pick the model covering this spectrum (:func:`jaxspec.models.auto.choose_model`)
    and cut the spectrum to its pixels; returns an error message or None."""
    from jaxspec.fit.binary import _auto_model, prepare_spectrum

    arrays = _entry_arrays(e)
    if isinstance(arrays, str):
        return arrays
    wave, flux = arrays
    try:
        f, w, iv = prepare_spectrum(flux, wave, e["err"], e["ivar"])
        if not np.any(iv > 0):
            return _ALL_MASKED
        model, w, res, (f, iv), info = _auto_model(None, w, e["resolution"], (f, iv), iv > 0)
    except ValueError as err:
        return str(err)
    if np.sum(iv > 0) < 10:
        return f"fewer than 10 usable pixels inside the model ({info})"
    e.update(wave=w, flux=f, ivar=iv, err=None, resolution=res, model=model, model_info=info)
    return None


def _digest(x) -> str:
    return hashlib.sha1(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest()


def _fit_group(entries, model, unnormalized, settings):
    """Fit entries that share a wavelength grid and resolution; per-spectrum columns."""
    from jaxspec.fit.binary import fit_binary_batch
    from jaxspec.io.results import fit_rows

    wave, res = entries[0]["wave"], entries[0]["resolution"]
    kw = dict(model=model, resolution=res, chunk_size=settings.get("batch_size"),
              threads=settings.get("threads"), devices=settings.get("devices"),
              unnormalized=unnormalized, **settings.get("fit_options", {}))
    if settings.get("bic_threshold") is not None:
        kw["bic_threshold"] = settings["bic_threshold"]
    flux = np.stack([e["flux"] for e in entries])
    ivar = np.stack([e["ivar"] for e in entries])
    fit = fit_binary_batch(flux, wave, ivar=ivar, **kw)
    if entries[0].get("model_info"):
        import dataclasses

        fit = dataclasses.replace(fit, model_info=entries[0]["model_info"])
    return fit, fit_rows(fit, [e["id"] for e in entries], [e["source"] for e in entries])


def _fit_chunk(inp: _Input, a: int, b: int, settings: dict, model, unnormalized):
    """Read, check and fit spectra a..b-1 with loaded models; returns the chunk's columns."""
    from jaxspec.fit.result import FLAGS
    from jaxspec.io.results import failed_rows

    names, units = settings["names"], settings["units"]
    auto = settings.get("_model", "given") is None and unnormalized is None
    entries = _read_entries(inp, a, b, settings)
    for e in entries:
        if "flag" not in e:
            msg = _choose_model(e) if auto else _check_entry(e, np.asarray(model.wave, dtype=np.float64))
            if msg is not None:
                e.update(flag=FLAGS["rejected"], error=msg)
    groups: dict = {}
    for i, e in enumerate(entries):
        if "flag" not in e:
            res = e["resolution"]
            key = (id(e.get("model", model)), _digest(e["wave"]), None if res is None else _digest(res))
            groups.setdefault(key, []).append(i)
    rows = [None] * len(entries)
    for idx in groups.values():
        m = entries[idx[0]].get("model", model)
        try:
            _, cols = _fit_group([entries[i] for i in idx], m, unnormalized, settings)
            parts = [(idx, cols)]
        except Exception as err:  # noqa: BLE001 - isolate the spectrum that breaks the batch
            log.warning("batch of %d spectra raised %s: %s; fitting them one by one", len(idx),
                        type(err).__name__, err)
            parts = []
            for i in idx:
                try:
                    parts.append(([i], _fit_group([entries[i]], m, unnormalized, settings)[1]))
                except Exception as err1:  # noqa: BLE001
                    entries[i].update(flag=FLAGS["fit_error"], error=f"{type(err1).__name__}: {err1}")
        for ii, cols in parts:
            for j, i in enumerate(ii):
                rows[i] = {k: v[j] for k, v in cols.items()}
    for i, e in enumerate(entries):
        if rows[i] is None:
            cols = failed_rows([e["id"]], [e["source"]], [e["error"]], [e["flag"]], names, units)
            rows[i] = {k: v[0] for k, v in cols.items()}
    columns = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
    return columns


def _chunk_task(inp: _Input, index: int, a: int, b: int, settings: dict, work_dir: str, run_id: str,
                models=None):
    """Fit one chunk and write its rows atomically (runs in the driver or on a Dask worker).

    ``models``: (model, unnormalized) objects in this process; None loads them from ``settings``.
    """
    from jaxspec.io.results import results_table, write_results

    if settings.get("cache_dir"):
        from jaxspec._cache import enable_compilation_cache

        enable_compilation_cache(settings["cache_dir"])
    if models is None:
        unn = settings["_unnormalized"]
        models = (_load_model(settings["_model"]), None if unn is None else _load_model(unn))
    t0 = time.perf_counter()
    cols = _fit_chunk(inp, a, b, settings, *models)
    table = results_table(cols, settings["names"], settings["units"])
    write_results(table, Path(work_dir) / "chunks" / f"chunk-{index:06d}.h5")
    n_failed = int(np.sum((np.asarray(table["flag"]) & _NOT_FITTED) != 0))
    event = {"chunk": index, "start": a, "stop": b, "n_failed": n_failed,
             "seconds": round(time.perf_counter() - t0, 3), "pid": os.getpid(), "run": run_id}
    with open(Path(work_dir) / "events.jsonl", "a") as fh:  # one short line: an atomic append
        fh.write(json.dumps(event) + "\n")
    return event


# ------------------------------------------------------------------ the driver


def fit_spectra(files, *, model=None, resolution=None, unnormalized=None, bic_threshold=None,
                read_options: dict | None = None, instrument: str | None = None, **fit_options):
    """Fit spectrum files in this process (no work directory): ``jaxspec fit FILE...``.

    Args:
        files: a path or a list of paths (any format :func:`jaxspec.io.read_spectrum` reads),
            a directory, or a text file listing files.
        model, unnormalized, bic_threshold, read_options: as :func:`run_survey`.
        resolution: resolving power lambda / FWHM for every spectrum (a scalar); None: each
            spectrum's own, as :func:`run_survey`.
        instrument: an instrument preset (:data:`jaxspec.instruments.INSTRUMENTS`): its
            continuum degree unless ``continuum_degree`` is given, its resolution for files that
            state none; a file of another instrument (as its reader identifies it) or outside
            the preset's reach is rejected with the reason.
        **fit_options: options of :func:`jaxspec.fit_binary`, as :func:`run_survey`.

    Returns:
        The results table (``astropy.table.Table``, one row per file; files that could not be
        read or fitted are flagged with the reason in ``error``).
    """
    from jaxspec.io.results import results_table

    fit_options = _instrument_options(instrument, fit_options)

    inp = list_inputs(files if isinstance(files, list | tuple) else files)
    loaded = _load_model(model)
    unn = None if unnormalized is None else _load_model(unnormalized)
    names, units = _param_names(loaded, fit_options)
    settings = {"names": names, "units": units, "fit_options": fit_options, "bic_threshold": bic_threshold,
                "read_options": read_options, "resolution_override": resolution, "_model": model,
                "instrument": instrument}
    cols = _fit_chunk(inp, 0, inp.n, settings, loaded, unn)
    return results_table(cols, names, units)


def _instrument_options(instrument, fit_options: dict) -> dict:
    """The fit options with a preset's continuum degree (unless given); an unknown preset fails
    at once, before any file is read."""
    if instrument is None:
        return fit_options
    from jaxspec.instruments import INSTRUMENTS, check_instrument

    check_instrument(instrument, [])
    return {"continuum_degree": INSTRUMENTS[instrument].continuum_degree, **fit_options}


def _param_names(model, fit_options: dict):
    """Names and units of the fit's parameters; also checks the options (bad options, unknown or
    out-of-range fixed parameters), so that they fail the run at once, not every chunk."""
    from jaxspec.fit.binary import _options
    from jaxspec.models.binary import BinaryModel

    _options(model, **fit_options)
    bm = BinaryModel(model, np.asarray(model.wave, dtype=np.float64),
                     shared=tuple(fit_options.get("shared", ("feh",))), fixed=fit_options.get("fixed"))
    spec = bm.spec
    return list(spec.names), [spec[n].unit for n in spec.names]


def _digest_text(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _source_name(inp: _Input, source) -> str:
    if inp.kind == "stack":
        return inp.path
    return str(Path(source).resolve()) if isinstance(source, str | os.PathLike) else f"{inp.n} files"


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    return x


def _log_to(work_dir: Path):
    handler = logging.FileHandler(work_dir / "survey.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def run_survey(
    source,
    out,
    *,
    model=None,
    resolution=None,
    chunk_size: int = 256,
    workers: int = 1,
    scheduler: str | None = None,
    work_dir=None,
    restart: bool = False,
    progress: bool | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    devices="auto",
    unnormalized=None,
    bic_threshold: float | None = None,
    read_options: dict | None = None,
    meta: dict | None = None,
    worker_env: dict | None = None,
    instrument: str | None = None,
    **fit_options,
):
    """Fit every spectrum of a survey and write one results table.

    Args:
        source: an HDF5 stack (:mod:`jaxspec.io.stack`), a directory of
            spectrum files (``*.fits``, ``*.fit``, ``*.fits.gz``, ...), a text
            file listing spectrum files (one per line; ``#`` comments), or a
            list of paths. Files are read with :func:`jaxspec.io.read_spectrum`.
        out: results file; the format follows the extension (``.fits``,
            ``.h5``/``.hdf5``, ``.ecsv``; see :mod:`jaxspec.io.results`).
        model: spectral model: None (the bundled default), an emulator file
            (:meth:`jaxspec.Emulator.save`), or a model object (saved to the
            work directory for Dask workers when it is an Emulator).
        resolution: resolving power lambda / FWHM for every spectrum (a
            scalar); None uses each spectrum's own (the stack's (N,) column
            or attribute, or what the file format states), and no LSF where
            none is known.
        chunk_size: spectra per chunk (the unit of work, of resuming and of
            progress).
        workers: Dask worker processes on this machine (a ``LocalCluster``);
            1 runs in this process.
        scheduler: address of a running Dask scheduler (e.g.
            ``"tcp://10.0.0.1:8786"``); overrides ``workers``.
        work_dir: where chunks, the manifest and the log live (default
            ``<out>.parts``); kept after the run so that it can be audited or
            extended; delete it when done.
        restart: discard finished chunks of an earlier run and start afresh.
        progress: tqdm progress bar with throughput and ETA (default: only
            when stderr is a terminal).
        batch_size, threads, devices: passed to
            :func:`jaxspec.fit_binary_batch` as ``chunk_size``, ``threads`` and
            ``devices`` (defaults suit the backend: on a CPU every core of each
            worker, on several accelerators chunks sharded over them,
            ``devices="auto"``).
        worker_env: environment variables of the ``LocalCluster`` workers
            (e.g. ``XLA_FLAGS`` or ``CUDA_VISIBLE_DEVICES``).
        unnormalized: unnormalized model for ``flux_ratio_mode="model"``
            (same forms as ``model``).
        bic_threshold: model-comparison threshold (default that of
            :func:`jaxspec.fit_binary`).
        read_options: keyword arguments for :func:`jaxspec.io.read_spectrum`.
        meta: extra metadata for the results table (JSON-able values).
        instrument: an instrument preset, as :func:`fit_spectra`.
        **fit_options: options of :func:`jaxspec.fit_binary` (``fixed``,
            ``shared``, ``flux_ratio_mode``, ``continuum_degree``, ...).

    Returns:
        The results table (``astropy.table.Table``), also written to ``out``.

    Raises:
        ValueError: unreadable input, a work directory made with other
            settings (use ``restart=True`` or another ``work_dir``), bad options.
        RuntimeError: chunks failed as a whole (a worker died twice); the
            finished chunks are kept, so a rerun resumes.
    """
    from jaxspec.io.results import FORMATS, read_results, write_results

    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"results file {str(out)!r} needs one of the extensions {sorted(FORMATS)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    fit_options = _instrument_options(instrument, fit_options)
    inp = list_inputs(source)
    work = Path(work_dir) if work_dir is not None else out.with_name(out.name + ".parts")
    distributed = scheduler is not None or workers > 1
    if restart and work.exists():
        import shutil

        shutil.rmtree(work)
    (work / "chunks").mkdir(parents=True, exist_ok=True)
    handler = _log_to(work)
    try:
        loaded = _load_model(model)
        model_desc, model_arg = _describe_model(model, work, "model", distributed)
        unn_desc, unn_arg = _describe_model(unnormalized, work, "unnormalized", distributed)
        if unnormalized is None:
            unn_desc = None
        names, units = _param_names(loaded, fit_options)
        settings = {
            "source": _source_name(inp, source),
            # a file list is recorded by its digest, not in full (a survey may list 10^5 files)
            "files_sha1": None if inp.kind == "stack" else _digest_text("\n".join(inp.files)),
            "n_spectra": inp.n, "chunk_size": int(chunk_size), "model": model_desc,
            "unnormalized": unn_desc, "resolution": resolution, "fit_options": _jsonable(fit_options),
            "bic_threshold": bic_threshold, "read_options": _jsonable(read_options or {}),
        }
        if instrument is not None:
            settings["instrument"] = instrument
        manifest = work / "manifest.json"
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if old != _jsonable(settings):
                diff = sorted(k for k in settings if old.get(k) != _jsonable(settings).get(k))
                raise ValueError(f"work directory {str(work)!r} belongs to a run with other settings "
                                 f"({', '.join(diff)} differ); pass restart=True (--restart) to discard "
                                 f"it, or another work_dir")
        else:
            _write_json_atomic(manifest, _jsonable(settings))
        import jax

        task_settings = {
            "names": names, "units": units, "_model": model_arg, "_unnormalized": unn_arg,
            "fit_options": fit_options, "bic_threshold": bic_threshold, "batch_size": batch_size,
            "threads": threads, "devices": devices, "read_options": read_options,
            "cache_dir": jax.config.jax_compilation_cache_dir or None, "worker_env": worker_env,
            "instrument": instrument,
        }
        if resolution is not None:
            task_settings["resolution_override"] = resolution
        bounds = [(i, a, min(a + chunk_size, inp.n)) for i, a in enumerate(range(0, inp.n, chunk_size))]
        done = {i for i, _, _ in bounds if (work / "chunks" / f"chunk-{i:06d}.h5").exists()}
        todo = [c for c in bounds if c[0] not in done]
        run_id = uuid.uuid4().hex[:12]
        log.info("run %s: %d spectra in %d chunks from %s; %d chunks already finished, %d to do; %s",
                 run_id, inp.n, len(bounds), source, len(done), len(todo),
                 f"scheduler {scheduler}" if scheduler else f"{workers} worker(s)")
        from tqdm.auto import tqdm

        bar = tqdm(total=inp.n, initial=sum(b - a for i, a, b in bounds if i in done), unit="spectra",
                   desc="jaxspec survey", disable=(None if progress is None else not progress),
                   smoothing=0.1)
        failed_chunks = []
        try:
            events = (_run_distributed(inp, todo, task_settings, work, run_id, workers, scheduler,
                                       failed_chunks) if distributed else
                      _run_serial(inp, todo, task_settings, work, run_id,
                                  (loaded, None if unnormalized is None else _load_model(unnormalized))))
            for ev in events:
                bar.update(ev["stop"] - ev["start"])
                log.info("chunk %d (spectra %d-%d) done in %.1f s, %d not fitted", ev["chunk"],
                         ev["start"], ev["stop"] - 1, ev["seconds"], ev["n_failed"])
        finally:
            bar.close()
        if failed_chunks:
            raise RuntimeError(f"{len(failed_chunks)} chunk(s) failed as a whole: {failed_chunks[:5]}; "
                               f"finished chunks are kept in {work}: run again to retry the rest")
        from astropy.table import vstack

        parts = [read_results(work / "chunks" / f"chunk-{i:06d}.h5") for i, _, _ in bounds]
        table = vstack(parts, metadata_conflicts="silent") if len(parts) > 1 else parts[0]
        table.meta.clear()
        from jaxspec._version import __version__

        table.meta["jaxspec_version"] = __version__
        table.meta["run_settings"] = json.dumps(_jsonable(settings), sort_keys=True)
        table.meta["survey_n_spectra"] = int(inp.n)
        table.meta["survey_n_not_fitted"] = int(np.sum((np.asarray(table["flag"]) & _NOT_FITTED) != 0))
        for k, v in (meta or {}).items():
            table.meta[k] = v if isinstance(v, str | int | float | bool) else json.dumps(_jsonable(v))
        write_results(table, out)
        log.info("run %s: wrote %s (%d rows, %d not fitted)", run_id, out, len(table),
                 table.meta["survey_n_not_fitted"])
        return table
    finally:
        log.removeHandler(handler)
        handler.close()


def _run_serial(inp, todo, settings, work, run_id, models):
    for i, a, b in todo:
        yield _chunk_task(inp, i, a, b, settings, str(work), run_id, models=models)


def _run_distributed(inp, todo, settings, work, run_id, workers, scheduler, failed):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as err:
        raise ImportError("workers > 1 and scheduler= need Dask: pip install 'dask[distributed]' "
                          "(or the project's 'survey' extra)") from err

    if scheduler is not None:
        client, cluster = Client(scheduler), None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, env=settings.get("worker_env") or {})
        client = Client(cluster)
    try:
        futures = {client.submit(_chunk_task, inp, i, a, b, settings, str(work), run_id, pure=False,
                                 retries=1, key=f"jaxspec-chunk-{i}-{run_id}"): (i, a, b)
                   for i, a, b in todo}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as err:  # noqa: BLE001 - a whole chunk failed twice: report, keep going
                i, a, b = futures[fut]
                log.error("chunk %d (spectra %d-%d) failed: %s: %s", i, a, b - 1, type(err).__name__, err)
                failed.append(i)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
