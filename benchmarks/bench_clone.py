"""Grid cloning: a generator grid cloned into a line-list model, checked on and off the grid.

1. The grid: the line-list generator's spectra at the points of a rectilinear grid
   (default 13 teff 4000-7000 K x 4 logg 3.5-5.0 x 4 [Fe/H] -1.0..+0.5 = 208 points) in the
   bundled band 4950-5350 A, binned to the bundled emulator's 3 km/s pixels.
2. The clone (:func:`jaxspec.clone.clone_grid`, default options): build time, lines, and the
   rms of clone - grid at the grid points.
3. Off the grid: ``--n-off`` generator spectra at labels drawn uniformly inside the box,
   against the clone; beside it the rms of plain multilinear interpolation of the grid
   fluxes (what a grid without a clone gives at the same points).
4. Evaluation time of one spectrum (jitted, compiled once) for the clone and the generator.
5. Labels: ``--n-fit`` off-grid generator spectra (single stars, rv within +-100 km/s,
   vsini 0-20 km/s, R ``--resolution``, S/N ``--snr``) fitted by ``fit_binary_batch`` with
   flux ratio fixed to 0 (what ``fit_single`` does), once with ``model=clone`` and once with
   the generator itself (binned the same way): teff within 100 K, and median errors.

    python benchmarks/bench_clone.py                      # the issue's size (~30 min, 2 cores)
    python benchmarks/bench_clone.py --wave-min 5000 --wave-max 5030 --teff-step 1000 \\
        --logg 4.0,4.5 --feh=-0.5,0.0 --steps 50 --n-off 3 --n-fit 2     # seconds
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "records"


def _floats(s):
    return [float(v) for v in s.split(",")]


def _time_call(fn, x, repeat=20):
    fn(x).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(x).block_until_ready()
    return 1000.0 * (time.perf_counter() - t0) / repeat


def _rms(a, b):
    return np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2, axis=1))


def _stats(r):
    return {"median": float(np.median(r)), "p95": float(np.percentile(r, 95)), "max": float(np.max(r))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wave-min", type=float, default=4950.0)
    p.add_argument("--wave-max", type=float, default=5350.0)
    p.add_argument("--teff-min", type=float, default=4000.0)
    p.add_argument("--teff-max", type=float, default=7000.0)
    p.add_argument("--teff-step", type=float, default=250.0)
    p.add_argument("--logg", type=_floats, default=[3.5, 4.0, 4.5, 5.0])
    p.add_argument("--feh", type=_floats, default=[-1.0, -0.5, 0.0, 0.5])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--n-off", type=int, default=50)
    p.add_argument("--n-fit", type=int, default=100)
    p.add_argument("--snr", type=float, default=100.0)
    p.add_argument("--resolution", type=float, default=20000.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="also write the clone (HDF5) here")
    p.add_argument("--out", type=Path, default=RESULTS / "clone.json")
    a = p.parse_args(argv)

    import jax
    import jax.numpy as jnp

    import jaxspec
    from jaxspec._machine import cpu_model
    from jaxspec.clone import clone_grid, save_clone
    from jaxspec.emulator.train import make_training_set
    from jaxspec.models import BinaryModel
    from jaxspec.simulate import BinnedModel
    from scipy.interpolate import RegularGridInterpolator

    rng = np.random.default_rng(a.seed)
    gen = jaxspec.LineListGenerator(wave_min=a.wave_min, wave_max=a.wave_max)
    teff = np.arange(a.teff_min, a.teff_max + 1e-9, a.teff_step)
    axes = (teff, np.asarray(a.logg), np.asarray(a.feh))
    labels = np.array(list(itertools.product(*axes)))
    t0 = time.perf_counter()
    flux, wave = make_training_set(gen, labels, bin_pixels=3)
    t_grid = time.perf_counter() - t0
    print(f"grid: {labels.shape[0]} spectra x {wave.size} pixels ({t_grid:.0f} s)", flush=True)

    clone, report = clone_grid((labels, flux, wave, gen.label_names), steps=a.steps, progress=True)
    if a.save is not None:
        save_clone(a.save, clone, report=report.as_dict())
    batch = jax.jit(jax.vmap(clone.flux))

    def clone_flux(lab):
        return np.concatenate([np.asarray(batch(jnp.asarray(lab[i:i + 32], jnp.float32)))
                               for i in range(0, len(lab), 32)])

    on = _rms(clone_flux(labels), flux)
    box = np.array([[ax[0], ax[-1]] for ax in axes])
    off = box[:, 0] + (box[:, 1] - box[:, 0]) * rng.uniform(size=(a.n_off, 3))
    truth_off, _ = make_training_set(gen, off, bin_pixels=3)
    off_rms = _rms(clone_flux(off), truth_off)
    rgi = RegularGridInterpolator(axes, flux.reshape(tuple(ax.size for ax in axes) + (-1,)))
    interp_rms = _rms(rgi(off), truth_off)

    lab0 = jnp.asarray([5500.0, 4.3, -0.2], jnp.float32)
    ms_clone = _time_call(jax.jit(clone.flux), lab0)
    binned = BinnedModel(gen, 3, label_bounds=box)
    ms_gen = _time_call(jax.jit(binned.flux), lab0, repeat=5)

    # Labels from off-grid generator spectra, fitted with the clone and with the generator.
    margin = min(40.0, 0.2 * (a.wave_max - a.wave_min))  # room for +-100 km/s and the LSF
    obs_wave = np.arange(a.wave_min + margin, a.wave_max - margin, 0.1)
    sim = BinaryModel(binned, obs_wave, resolution=a.resolution)
    n = a.n_fit
    lab_fit = box[:, 0] + (box[:, 1] - box[:, 0]) * rng.uniform(0.05, 0.95, size=(n, 3))
    truth = {"teff_1": lab_fit[:, 0], "logg_1": lab_fit[:, 1], "feh": lab_fit[:, 2],
             "rv_1": rng.uniform(-100, 100, n), "vsini_1": rng.uniform(0, 20, n),
             "flux_ratio": np.zeros(n), "teff_2": np.full(n, 5000.0), "logg_2": np.full(n, 4.5),
             "rv_2": np.zeros(n), "vsini_2": np.full(n, 5.0)}
    truth = {k: v for k, v in truth.items() if k in sim.spec.names}
    fsim = jax.jit(jax.vmap(sim.flux))
    clean = np.asarray(fsim({k: jnp.asarray(v) for k, v in truth.items()}), np.float64)
    err = np.full_like(clean, 1.0 / a.snr)
    obs = clean + rng.normal(size=clean.shape) * err
    fits = {}
    for name, model in (("clone", clone), ("generator", binned)):
        t0 = time.perf_counter()
        fit = jaxspec.fit_binary_batch(obs, obs_wave, err, model=model, resolution=a.resolution,
                                       fixed={"flux_ratio": 0.0})
        dt = time.perf_counter() - t0
        d = {k: np.abs(np.asarray(fit.params[k]) - truth[k]) for k in ("teff_1", "logg_1", "feh", "rv_1")}
        fits[name] = {"teff_within_100K": float(np.mean(d["teff_1"] <= 100.0)),
                      "median_abs_error": {k: float(np.median(v)) for k, v in d.items()},
                      "ok": float(np.mean(fit.ok)), "s_per_fit": dt / n}
        print(f"fit with the {name}: teff within 100 K {fits[name]['teff_within_100K']:.3f}", flush=True)

    result = {
        "band_A": [a.wave_min, a.wave_max], "grid": {"teff": teff.tolist(), "logg": a.logg, "feh": a.feh,
                                                      "n_points": int(labels.shape[0]), "n_pix": int(wave.size),
                                                      "pixel_kms": 3.0, "seconds": t_grid},
        "build": report.as_dict(), "on_grid_rms": _stats(on), "required_on_grid_rms": 0.01,
        "off_grid": {"n": a.n_off, "clone_rms": _stats(off_rms), "flux_interpolation_rms": _stats(interp_rms)},
        "required_off_grid_rms": 0.015,
        "eval_ms_per_spectrum": {"clone": ms_clone, "generator": ms_gen},
        "labels": {"n": n, "snr": a.snr, "resolution": a.resolution, **fits, "required_teff_within_100K": 0.90},
        "device": str(jax.devices()[0].platform), "cpu": cpu_model(), "jax": jax.__version__,
        "precision": "float32",
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(f"\nClone of {labels.shape[0]} generator spectra ({wave.size} pixels, {a.wave_min:g}-{a.wave_max:g} A): "
          f"{report.n_lines} lines, built in {report.seconds:.0f} s")
    print(f"{'':28s} {'median':>8s} {'p95':>8s} {'max':>8s} {'bound':>6s}")
    for name, s, bound in (("rms on the grid", result["on_grid_rms"], 0.01),
                           ("rms off the grid (clone)", result["off_grid"]["clone_rms"], 0.015),
                           ("  grid flux interpolation", result["off_grid"]["flux_interpolation_rms"], None)):
        print(f"{name:28s} {s['median']:8.4f} {s['p95']:8.4f} {s['max']:8.4f} {bound if bound else '':>6}")
    print(f"one spectrum: clone {ms_clone:.2f} ms, generator {ms_gen:.1f} ms")
    for name, f in fits.items():
        m = f["median_abs_error"]
        print(f"fit_single with the {name:9s}: teff within 100 K {f['teff_within_100K']:.3f} (>= 0.90), median "
              f"|dteff| {m['teff_1']:.0f} K, |dlogg| {m['logg_1']:.3f}, |dfeh| {m['feh']:.3f}, "
              f"{f['s_per_fit'] * 1000:.0f} ms per fit")
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
