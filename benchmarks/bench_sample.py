"""Speed of sample_binary: wall time and bulk ESS per second of the slowest parameter.

Cases (4 chains, ``--num-warmup`` + ``--num-samples`` iterations each):

* ``default``: the bundled emulator, 4990-5310 A at 0.2 A, R = 7,500, S/N 30,
  one simulated binary (the example's truth), once per chain method in
  ``--methods`` (``threads``: chain groups on the CPU cores; ``vectorized``);
* ``binspec``: binspec's normalized APOGEE network on the APOGEE grid (vsini
  fixed at 0, [Fe/H] and [Mg/Fe] shared, S/N 50); skipped when the data are
  absent (``benchmarks/_data.py``);
* ``batch``: ``sample_binary_batch`` on ``--n-batch`` default-model spectra,
  compiled once: time per spectrum (``--batch-method``: ``auto`` is one
  thread per core, each running its spectra's chains, on a CPU; ``vectorized``
  is one program vmapped over the spectra, the accelerators' way).

Each case runs twice: the first call compiles (reported as ``first_call_s``),
the second is timed. ``min_ess_bulk`` is the smallest bulk ESS over the
sampled parameters (4 chains pooled), ``ess_per_s`` that divided by the
sampling wall time. Writes ``benchmarks/records/sample.json``.

    python benchmarks/bench_sample.py                     # the acceptance run (long on 2 cores)
    python benchmarks/bench_sample.py --num-warmup 50 --num-samples 50 --n-batch 2 --cases default batch
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "records"

from _data import binspec_dir  # noqa: E402

TRUTH = {"teff_1": 5900.0, "logg_1": 4.3, "teff_2": 5000.0, "logg_2": 4.6, "feh": -0.3, "rv_1": -22.0,
         "rv_2": 41.0, "vsini_1": 8.0, "vsini_2": 4.0, "flux_ratio": 0.45}
PRIORS = {"vsini_1": (0.0, 60.0), "vsini_2": (0.0, 60.0)}


def _stats(post, wall):
    diag = post.diagnostics()
    ess = {n: d["ess_bulk"] for n, d in diag.items()}
    slow = min(ess, key=lambda n: ess[n] if np.isfinite(ess[n]) else np.inf)
    return {"sample_s": wall, "fit_s": post.timing["fit_s"], "min_ess_bulk": ess[slow], "slowest": slow,
            "ess_per_s": ess[slow] / wall, "max_r_hat": max(d["r_hat"] for d in diag.values()),
            "divergences": int(post.diverging.sum()), "mean_tree_depth": float(post.tree_depth.mean()),
            "mean_leapfrog_steps": float(post.num_steps.mean()), "step_size": post.step_size.tolist(),
            "warmup_steps_per_chain": float(post.warmup_steps.mean()),
            "sampling_steps_per_chain": float(post.num_steps.sum(axis=1).mean()),
            "flag": post.flag_message, "modes": len(post.modes), "draws_per_chain": post.num_draws,
            "rewarms": int(post.settings.get("rewarms", 0))}


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def default_case(args, method):
    import jaxspec
    from jaxspec.infer import sample_binary
    from jaxspec.models import BinaryModel
    from jaxspec.simulate import simulate

    model = jaxspec.default_model()
    wave = np.arange(4990.0, 5310.0, 0.2)
    bm = BinaryModel(model, wave, resolution=7500.0)
    theta = {k: np.array([v]) for k, v in TRUTH.items()}
    flux, err, _ = simulate(bm, theta, np.random.default_rng(1), snr=30.0)
    fit = jaxspec.fit_binary(flux[0], wave, err[0], model=model, resolution=7500.0)

    def go(seed):
        return sample_binary(flux[0], wave, err[0], model=model, fit=fit, resolution=7500.0, priors=PRIORS,
                             num_warmup=args.num_warmup,
                             warmup_tree_depth=args.warmup_tree_depth, num_samples=args.num_samples,
                             chain_method=method, seed=seed)

    _, first = _timed(lambda: go(0))
    post, _ = _timed(lambda: go(args.seed))
    return {"first_call_s": first, **_stats(post, post.timing["sample_s"]), "chain_method": method}


def binspec_case(args):
    d = binspec_dir()
    if not (d / "NN_normalized_spectra.npz").exists():
        return {"skipped": f"binspec data not found in {d}"}
    import jaxspec
    from jaxspec.emulator.io import from_binspec
    from jaxspec.infer import sample_binary
    from jaxspec.models import BinaryModel
    from jaxspec.simulate import simulate

    names = ("teff", "logg", "feh", "mgfe", "vmacro")
    wave = np.load(d / "apogee_wavelength.npz")["wavelength"]
    model = from_binspec(d / "NN_normalized_spectra.npz", names, wave)
    opts = {"fixed": {"vsini_1": 0.0, "vsini_2": 0.0}, "shared": ("feh", "mgfe")}
    bm = BinaryModel(model, wave, rv_max=450.0, **opts)
    truth = {"teff_1": 5800.0, "logg_1": 4.4, "vmacro_1": 5.0, "teff_2": 4900.0, "logg_2": 4.6,
             "vmacro_2": 3.0,
             "feh": -0.1, "mgfe": 0.05, "rv_1": -15.0, "rv_2": 30.0, "vsini_1": 0.0, "vsini_2": 0.0,
             "flux_ratio": 0.5}
    theta = {k: np.array([v]) for k, v in truth.items()}
    flux, err, _ = simulate(bm, theta, np.random.default_rng(2), snr=50.0)
    fit = jaxspec.fit_binary(flux[0], wave, err[0], model=model, **opts)

    def go(seed):
        return sample_binary(flux[0], wave, err[0], model=model, fit=fit, num_warmup=args.num_warmup,
                             warmup_tree_depth=args.warmup_tree_depth,
                             num_samples=args.num_samples, seed=seed, **opts)

    _, first = _timed(lambda: go(0))
    post, _ = _timed(lambda: go(args.seed))
    return {"first_call_s": first, **_stats(post, post.timing["sample_s"]), "chain_method": post.settings[
        "chain_method"]}


def batch_case(args):
    import jaxspec
    from jaxspec.infer import sample_binary_batch
    from jaxspec.models import BinaryModel
    from jaxspec.simulate import draw_binaries, simulate

    model = jaxspec.default_model()
    wave = np.arange(4990.0, 5310.0, 0.2)
    bm = BinaryModel(model, wave, resolution=7500.0)
    rng = np.random.default_rng(3)
    truth = draw_binaries(bm, args.n_batch, rng, vsini=(0.0, 40.0), flux_ratio=(0.3, 1.0))
    flux, err, _ = simulate(bm, truth, rng, snr=30.0)
    fits = jaxspec.fit_binary_batch(flux, wave, err, model=model, resolution=7500.0)

    def go(seed, n):
        return sample_binary_batch(flux[:n], wave, err[:n], model=model,
                                   fits=fits if n == len(flux) else None,
                                   resolution=7500.0, priors=PRIORS, num_warmup=args.num_warmup,
                             warmup_tree_depth=args.warmup_tree_depth,
                                   num_samples=args.num_samples, chunk_size=args.n_batch,
                                   chain_method=args.batch_method, seed=seed)

    # The compile call: the vmapped program's shape is the chunk's, so it needs the whole batch; the
    # threads' single-chain program is the same for any number of spectra (2 compile it, and cost less).
    n_first = args.n_batch if args.batch_method == "vectorized" else min(2, args.n_batch)
    _, first = _timed(lambda: go(0, n_first))
    posts, wall = _timed(lambda: go(args.seed, args.n_batch))
    ess = [min(d["ess_bulk"] for d in p.diagnostics().values()) for p in posts]
    return {"n": args.n_batch, "chain_method": posts[0].settings["chain_method"], "first_call_s": first,
            "first_call_spectra": n_first,
            "wall_s": wall, "per_spectrum_s": wall / args.n_batch,
            "median_min_ess_bulk": float(np.median(ess)), "min_min_ess_bulk": float(np.min(ess)),
            "draws_per_chain": [p.num_draws for p in posts], "flags": [p.flag_message for p in posts],
            "rewarms": [int(p.settings.get("rewarms", 0)) for p in posts],
            "chains_s": [float(p.timing["chains_s"]) for p in posts if "chains_s" in p.timing]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-warmup", type=int, default=500)
    ap.add_argument("--num-samples", type=int, default=500)
    ap.add_argument("--warmup-tree-depth", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1, help="seed of the timed call (the first call uses 0)")
    ap.add_argument("--n-batch", type=int, default=16)
    ap.add_argument("--batch-method", default="auto", choices=["auto", "threads", "vectorized"])
    ap.add_argument("--methods", nargs="+", default=["threads", "vectorized"])
    ap.add_argument("--cases", nargs="+", default=["default", "binspec", "batch"])
    ap.add_argument("--out", default=str(RESULTS / "sample.json"))
    args = ap.parse_args(argv)
    import jax

    from jaxspec._machine import cpu_model, usable_cores

    out = {"settings": vars(args), "machine": {"cpu": cpu_model(), "cores": usable_cores(),
                                               "backend": jax.default_backend(), "jax": jax.__version__,
                                               "x64": bool(jax.config.jax_enable_x64),
                                               "python": platform.python_version()}}
    if "default" in args.cases:
        out["default"] = [default_case(args, m) for m in args.methods]
        for r in out["default"]:
            print(f"default {r['chain_method']:10s}: sampling {r['sample_s']:.1f} s (first call "
                  f"{r['first_call_s']:.1f} s), min bulk ESS {r['min_ess_bulk']:.0f} ({r['slowest']}), "
                  f"{r['ess_per_s']:.1f} ESS/s, tree depth {r['mean_tree_depth']:.1f}, {r['flag']}, "
                  f"{r['draws_per_chain']} draws, rewarmed {r['rewarms']}")
    if "binspec" in args.cases:
        out["binspec"] = r = binspec_case(args)
        print("binspec:", r.get("skipped") or f"sampling {r['sample_s']:.1f} s, min bulk ESS "
              f"{r['min_ess_bulk']:.0f}, {r['ess_per_s']:.1f} ESS/s, {r['flag']}")
    if "batch" in args.cases:
        out["batch"] = r = batch_case(args)
        print(f"batch of {r['n']} ({r['chain_method']}): {r['per_spectrum_s']:.1f} s per spectrum "
              f"(wall {r['wall_s']:.0f} s), min bulk ESS median {r['median_min_ess_bulk']:.0f}, lowest "
              f"{r['min_min_ess_bulk']:.0f}; flags {sorted(set(r['flags']))}; rewarmed {sum(r['rewarms'])}")
        if r["chains_s"]:
            c = np.asarray(r["chains_s"])
            print(f"  chains' core-seconds per spectrum: median {np.median(c):.0f}, max {c.max():.0f} "
                  f"(spectrum {int(c.argmax())}), all {c.sum():.0f} (/ {usable_cores()} cores = "
                  f"{c.sum() / usable_cores():.0f} s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)
    return out


if __name__ == "__main__":
    main()
