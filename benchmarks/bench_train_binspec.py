"""Train an MLP emulator on a real source: spectra from binspec's APOGEE network.

Samples ``--n-train`` label vectors (Sobol) over the label range of
``shared/data/binspec/NN_normalized_spectra.npz`` (teff, logg, feh, mg_fe,
vmacro), evaluates that per-pixel network (imported with
``Emulator.from_binspec``) on the 7,214 APOGEE pixels, trains a jaxspec MLP on
them (``train_emulator``) and reports the rms on ``--n-test`` held-out labels
drawn uniformly from the same range. Issue target: held-out rms <= 2e-3.
Writes ``benchmarks/records/bench_train_binspec.json``.

Usage: python benchmarks/bench_train_binspec.py [--n-train 4096] [--steps 20000] [--hidden 256 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxspec.emulator import Emulator, sample_labels, train_emulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import binspec_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "records"
LABELS = ("teff", "logg", "feh", "mg_fe", "vmacro")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=4096)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--n-pix", type=int, default=0, help="use only the first N pixels (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "bench_train_binspec.json"))
    args = ap.parse_args(argv)
    d = binspec_dir()
    if not (d / "NN_normalized_spectra.npz").is_file():
        raise SystemExit(f"binspec network not found in {d}; set JAXSPEC_BINSPEC_DATA")
    t0 = time.perf_counter()
    wave = np.load(d / "apogee_wavelength.npz", allow_pickle=False)["wavelength"]
    source = Emulator.from_binspec(d / "NN_normalized_spectra.npz", LABELS, wave)
    box = source.label_bounds
    n_pix = args.n_pix or wave.size
    train = sample_labels(box, args.n_train, seed=args.seed, method="sobol")
    test = sample_labels(box, args.n_test, seed=args.seed + 100, method="uniform")
    f_train = np.asarray(source.flux_batch(train))[:, :n_pix]
    f_test = np.asarray(source.flux_batch(test))[:, :n_pix]
    em, report = train_emulator(
        train, f_train, wave[:n_pix], LABELS, label_bounds=box, hidden=tuple(args.hidden),
        steps=args.steps, batch_size=args.batch_size, seed=args.seed, progress=False,
        eval_every=max(args.steps // 20, 1),
    )
    resid = np.asarray(em.flux_batch(test)) - f_test
    result = {
        "n_train": args.n_train,
        "n_test": args.n_test,
        "n_pix": int(n_pix),
        "hidden": list(args.hidden),
        "steps": report.steps,
        "best_step": report.best_step,
        "val_rms": report.val_rms,
        "test_rms": float(np.sqrt(np.mean(resid**2))),
        "test_p99_abs": float(np.percentile(np.abs(resid), 99)),
        "flux_std": float(np.std(f_train)),
        "target_rms": 2e-3,
        "device": str(jax.devices()[0]),
        "seconds": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    for k in ("n_train", "n_pix", "steps", "val_rms", "test_rms", "test_p99_abs", "seconds"):
        print(f"{k:14s} {result[k]}")
    print(f"target held-out rms <= 2e-3: {'met' if result['test_rms'] <= 2e-3 else 'NOT met'}")
    return result


if __name__ == "__main__":
    main()
