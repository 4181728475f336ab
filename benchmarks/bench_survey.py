"""End-to-end survey throughput: read, single and binary fits, write, on the APOGEE grid.

1. Generate a synthetic survey of ``--n`` APOGEE-sized spectra (7,214 pixels,
   binspec's normalized network; a ``--binary-fraction`` of binaries with
   flux ratio 0.2-1 and |rv_1 - rv_2| >= 20 km/s, the rest single stars;
   S/N 50; float32) into an HDF5 stack (:mod:`jaxspec.io.stack`). The
   network is saved as a jaxspec emulator file so that Dask workers load it.
2. Run ``jaxspec.survey.run_survey`` on it end to end (read chunks from the
   stack, fit single and binary models, write chunk files, assemble and write
   the FITS results table): serially in this process, then on a Dask
   ``LocalCluster`` with ``--workers`` processes. Each run starts from an
   empty work directory and a warm persistent compilation cache (a short
   warm-up run fills it), so the figures are steady-state throughput; the
   compile time of a cold start is reported separately.
3. Report spectra per hour for each run, their ratio, agreement between
   the two tables, and the recovery of the truths (rv within 2 km/s).

    python benchmarks/bench_survey.py --n 10000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "records"

from _data import binspec_dir  # noqa: E402

NAMES = ("teff", "logg", "feh", "mgfe", "vmacro")
FIT_OPTIONS = {"fixed": {"vsini_1": 0.0, "vsini_2": 0.0}, "shared": ("feh", "mgfe")}


def make_survey(path: Path, model_path: Path, n: int, binary_fraction: float, seed: int, snr: float = 50.0):
    """Simulate the survey into an HDF5 stack; returns the truths."""
    from jaxspec.emulator.io import from_binspec
    from jaxspec.io.stack import StackWriter
    from jaxspec.models import BinaryModel
    from jaxspec.simulate import draw_binaries, simulate

    d = binspec_dir()
    wave = np.load(d / "apogee_wavelength.npz")["wavelength"]
    model = from_binspec(d / "NN_normalized_spectra.npz", NAMES, wave)
    model.save(model_path)
    bm = BinaryModel(model, wave, rv_max=450.0, **FIT_OPTIONS)
    rng = np.random.default_rng(seed)
    truth = draw_binaries(bm, n, rng, rv_max=100.0, min_rv_difference=20.0, flux_ratio=(0.2, 1.0))
    for k in ("vmacro_1", "vmacro_2"):
        truth[k] = rng.uniform(0.0, 15.0, n)
    single = rng.uniform(size=n) >= binary_fraction
    truth["flux_ratio"] = np.where(single, 0.0, truth["flux_ratio"])
    block = 1000
    with StackWriter(path, wave, uncertainty="err", meta_columns={"is_binary_true": bool}) as w:
        for a in range(0, n, block):
            sl = slice(a, min(a + block, n))
            flux, err, _ = simulate(bm, {k: v[sl] for k, v in truth.items()}, rng, snr=snr)
            w.append(flux.astype(np.float32), err.astype(np.float32),
                     ids=[f"2M{i:08d}" for i in range(sl.start, sl.stop)],
                     meta={"is_binary_true": ~single[sl]})
    return truth, ~single


def timed_run(stack, model_path, out, **kw):
    from jaxspec.survey import run_survey

    shutil.rmtree(out.with_name(out.name + ".parts"), ignore_errors=True)
    t0 = time.perf_counter()
    table = run_survey(stack, out, model=str(model_path), progress=False, **FIT_OPTIONS, **kw)
    return table, time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--binary-fraction", type=float, default=0.5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--chunk-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--keep", type=Path, default=None, help="directory for the stack and tables (kept)")
    p.add_argument("--reuse", action="store_true",
                   help="with --keep: reuse the stack and the serial table of an earlier run; run only Dask")
    p.add_argument("--out", type=Path, default=RESULTS / "survey.json")
    a = p.parse_args(argv)
    if not (binspec_dir() / "NN_normalized_spectra.npz").exists():
        print(f"skipped: binspec networks not found in {binspec_dir()} (set JAXSPEC_BINSPEC_DATA)")
        return None
    import jax

    import jaxspec
    from jaxspec._machine import cpu_model, usable_cores

    work = a.keep or Path(tempfile.mkdtemp(prefix="jaxspec-bench-survey-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = jaxspec.enable_compilation_cache(work / "jaxcache")
    stack, model_path = work / "survey.h5", work / "binspec_normalized.h5"
    t0 = time.perf_counter()
    if a.reuse:  # the stack, truths and serial run of an earlier --keep run
        z = np.load(work / "truth.npz")
        truth, is_bin = {k: z[k] for k in z.files if k != "is_binary"}, z["is_binary"]
    else:
        truth, is_bin = make_survey(stack, model_path, a.n, a.binary_fraction, a.seed)
        np.savez(work / "truth.npz", is_binary=is_bin, **truth)
    t_make = time.perf_counter() - t0
    # cold start: compile + fit a few spectra (fills the persistent cache for the workers too)
    from jaxspec.io.stack import read_stack, write_stack

    s = read_stack(stack, 0, 8)
    write_stack(work / "warm.h5", s.flux, s.wave, err=s.err, ids=s.ids)
    _, t_cold = timed_run(work / "warm.h5", model_path, work / "warm.fits", chunk_size=8)
    runs, tables = {}, {}
    todo = [("serial", {}), (f"dask_{a.workers}_workers", {"workers": a.workers})]
    if a.reuse:
        from jaxspec.io.results import read_results

        tables["serial"] = read_results(work / "serial.fits")
        runs["serial"] = json.loads((work / "serial_run.json").read_text())
        todo = todo[1:]
    for label, kw in todo:
        table, sec = timed_run(stack, model_path, work / f"{label}.fits", chunk_size=a.chunk_size, **kw)
        tables[label] = table
        runs[label] = {"seconds": round(sec, 1), "spectra_per_hour": round(a.n / sec * 3600.0),
                       "n_not_fitted": int(table.meta["survey_n_not_fitted"])}
        print(f"{label}: {a.n} spectra in {sec:.1f} s = {a.n / sec * 3600:,.0f} per hour", flush=True)
        if label == "serial":
            (work / "serial_run.json").write_text(json.dumps(runs[label]))
    ser, dsk = tables["serial"], tables[f"dask_{a.workers}_workers"]
    dsk_run = runs[f"dask_{a.workers}_workers"]
    same = all(np.array_equal(np.asarray(ser[c]), np.asarray(dsk[c]), equal_nan=True)
               if ser[c].dtype.kind == "f" else list(ser[c]) == list(dsk[c]) for c in ser.colnames)
    rv1 = np.asarray(ser["rv_1"])
    rv2 = np.asarray(ser["rv_2"])
    ok_b = is_bin & (np.abs(rv1 - truth["rv_1"]) <= 2) & (np.abs(rv2 - truth["rv_2"]) <= 2)
    ok_b |= is_bin & (np.abs(rv2 - truth["rv_1"]) <= 2) & (np.abs(rv1 - truth["rv_2"]) <= 2)
    srv = np.asarray(ser["single_rv_1"])
    result = {
        "n": a.n, "binary_fraction": a.binary_fraction, "chunk_size": a.chunk_size, "pixels": 7214,
        "generate_seconds": round(t_make, 1), "cold_start_seconds_8_spectra": round(t_cold, 1),
        "runs": runs,
        "dask_over_serial": round(runs["serial"]["seconds"] / dsk_run["seconds"], 2),
        "tables_identical": bool(same),
        "binaries_both_rv_within_2kms": round(float(ok_b.sum() / max(is_bin.sum(), 1)), 3),
        "singles_rv_within_2kms": round(float(np.mean(np.abs(srv - truth["rv_1"])[~is_bin] <= 2)), 3),
        "is_binary_true_positive": round(float(np.mean(np.asarray(ser["is_binary"])[is_bin])), 3),
        "is_binary_false_positive": round(float(np.mean(np.asarray(ser["is_binary"])[~is_bin])), 3),
        "target_per_hour": 20000,
        "cpu": cpu_model(), "cores": usable_cores(), "backend": jax.default_backend(),
        "jax": jax.__version__, "jaxspec": jaxspec.__version__, "cache": str(cache),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(f"\n{'run':24s} {'seconds':>9s} {'spectra/hour':>14s}")
    for k, v in runs.items():
        print(f"{k:24s} {v['seconds']:9.1f} {v['spectra_per_hour']:14,d}")
    print(f"dask / serial speed-up {result['dask_over_serial']}; tables identical: {same}")
    print(f"binaries with both rv within 2 km/s {result['binaries_both_rv_within_2kms']}; "
          f"is_binary TP {result['is_binary_true_positive']}, FP {result['is_binary_false_positive']}")
    print(f"wrote {a.out}")
    if a.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
