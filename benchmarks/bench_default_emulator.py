"""Held-out accuracy of the bundled default emulator against the line-list generator.

Draws ``--n`` labels uniformly from the emulator's box (teff 4000-7500 K,
logg 1.0-5.0, feh -2.0..+0.5; seed independent of the training design),
computes the generator's spectra exactly as the training script does (built-in
calibrated list, 1 km/s pixels binned to the emulator's 3 km/s pixels), and
reports the rms of emulator - generator over all spectra and pixels, the
99th-percentile absolute error per pixel, and the worst pixel. Writes
``benchmarks/records/bench_default_emulator.json`` and a residual-per-pixel
plot (``--plot``). Issue target: rms <= 1e-3 (aim 3e-4).

Usage: python benchmarks/bench_default_emulator.py [--n 1000] [--seed 12345]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import jax
import numpy as np

import jaxspec
from jaxspec.emulator.train import make_training_set, sample_labels

RESULTS = Path(__file__).resolve().parent / "records"
ROOT = Path(__file__).resolve().parents[1]


def _training_constants():
    path = ROOT / "scripts" / "train_default_emulator.py"
    spec = importlib.util.spec_from_file_location("train_default", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", default=str(RESULTS / "bench_default_emulator.json"))
    ap.add_argument("--plot", default=str(RESULTS.parent / "results" / "bench_default_emulator.png"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    const = _training_constants()
    em = jaxspec.default_model()
    gen = jaxspec.LineListGenerator(wave_min=const.BAND[0], wave_max=const.BAND[1],
                                    pixel_kms=const.PIXEL_KMS)
    labels = sample_labels(em.label_bounds, args.n, seed=args.seed, method="uniform")
    truth, wave = make_training_set(gen, labels, bin_pixels=const.BIN)
    if not np.allclose(wave, em.wave, rtol=1e-12):
        raise SystemExit("generator binning and emulator grid differ; retrain the default emulator")
    pred = np.asarray(jax.jit(em.flux_batch)(labels))
    resid = pred - truth
    rms_pix = np.sqrt(np.mean(resid**2, axis=0))
    p99_pix = np.percentile(np.abs(resid), 99, axis=0)
    result = {
        "n_labels": args.n,
        "n_pix": int(wave.size),
        "rms": float(np.sqrt(np.mean(resid**2))),
        "mean_abs": float(np.mean(np.abs(resid))),
        "p99_abs": float(np.percentile(np.abs(resid), 99)),
        "max_abs": float(np.abs(resid).max()),
        "worst_pixel_rms": float(rms_pix.max()),
        "worst_pixel_wave": float(wave[rms_pix.argmax()]),
        "median_pixel_p99": float(np.median(p99_pix)),
        "target_rms": 1e-3,
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "seconds": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
        ax[0].plot(wave, np.median(truth, axis=0), "k", lw=0.4)
        ax[0].set_ylabel("median spectrum")
        ax[1].plot(wave, rms_pix, "C0", lw=0.5, label="rms per pixel")
        ax[1].plot(wave, p99_pix, "C3", lw=0.5, label="99th percentile |error| per pixel")
        ax[1].axhline(1e-3, color="k", ls=":", lw=0.8)
        ax[1].set_yscale("log")
        ax[1].legend(fontsize=8)
        ax[1].set_xlabel("vacuum wavelength [A]")
        ax[1].set_ylabel("emulator - generator")
        ax[0].set_title(f"Default emulator vs generator, {args.n} held-out labels: rms {result['rms']:.1e}")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
    print(f"{'held-out labels':24s}{args.n:>12d}")
    for k in ("rms", "mean_abs", "p99_abs", "max_abs", "worst_pixel_rms"):
        print(f"{k:24s}{result[k]:12.2e}")
    print(f"target rms <= 1e-3: {'met' if result['rms'] <= 1e-3 else 'NOT met'}; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
