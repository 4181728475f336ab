"""How well can *any* fit recover the recovery benchmark's binaries? Cramer-Rao limits by band.

``bench_recovery.py --model default`` asks for fixed tolerances (rv within
2 km/s, teff_1 within 150 K, teff_2 within 300 K, flux_ratio within 0.05) on
binaries drawn uniformly in the default model's label box (R 7,500, S/N 50,
|rv_1 - rv_2| >= 30 km/s, flux ratio 0.2-1, vsini 0-40 km/s). This script
asks what the data allow: for each binary it computes the Fisher matrix of
the binary model at the true parameters (all ten free parameters, plus the
Chebyshev continuum of the fit as nuisance parameters; Gaussian noise at the
simulated S/N, the simulated 5 % continuum slope) and from it the 1-sigma
Cramer-Rao bound sigma_i of each parameter. An efficient unbiased estimator
lands within tolerance with probability erf(tol / (sqrt(2) sigma_i)); the
mean over the population is the fraction *no* fit can beat on average
(the "information limit").

The same population is evaluated for the bundled default emulator in the
benchmark's window (4990-5310 A) and for the line-list generator (the
emulator's teacher, same label box, 3 km/s grid) in wider bands, with the
observed pixels at the same step in ln(lambda) (0.2 A at 5150 A) and the
same S/N per pixel. The generator in the default window reproduces the
emulator's limits (first two rows), so the other rows say what a default
model trained on that band would allow.

    python benchmarks/bench_information.py            # ~5 min on 2 cores
    python benchmarks/bench_information.py --n 50 --bands default lamost

Writes ``benchmarks/records/information_default.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recovery import CRITERIA, information_limit, setup_default  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "records"
STEP = 0.2 / 5150.0  # observed pixel step in ln(lambda): bench_recovery's 0.2 A at the band centre
BOX = {"teff": (4000.0, 7500.0), "logg": (1.0, 5.0), "feh": (-2.0, 0.5)}  # the default model's
# name -> observed segments [A]; "default" is bench_recovery's window
BANDS = {
    "default": ((4990.0, 5310.0),),
    "lamost": ((4990.0, 5310.0), (6340.0, 6760.0)),  # both LAMOST-MRS arms
    "blue": ((4500.0, 5310.0),),  # adds H beta
    "green": ((4200.0, 5800.0),),
    "optical": ((4200.0, 6800.0),),  # adds H alpha
    "all": ((3850.0, 8950.0),),  # everything the built-in line list covers
}


def observed_wave(segments):
    """Observed pixels: each segment at the constant ln(lambda) step ``STEP``."""
    return np.concatenate([a * np.exp(STEP * np.arange(int(np.log(b / a) / STEP))) for a, b in segments])


def cramer_rao(bm, truth, snr, slope, degree):
    """(n, n_free) Cramer-Rao 1-sigma bounds at ``truth`` (Gaussian noise, err = continuum / snr).

    The continuum of the fit (Chebyshev of ``degree`` per segment, multiplying the model) enters
    as nuisance parameters, so the bounds include the labels' trade-off with it."""
    import jax
    import jax.numpy as jnp

    from jaxspec.fit.continuum import continuum_design
    from jaxspec.simulate import sloped_continuum

    names = bm.spec.free
    wave = bm.wave
    design = continuum_design(wave, degree)
    cont = sloped_continuum(wave, slope)
    w = (snr / cont) ** 2

    def flux(v, fixed):
        return bm.flux({**fixed, **{nm: v[i] for i, nm in enumerate(names)}})

    f_and_j = jax.jit(lambda v, fixed: (flux(v, fixed), jax.jacfwd(flux)(v, fixed)))
    n = len(truth[names[0]])
    out = np.empty((n, len(names)))
    for i in range(n):
        fixed = {k: jnp.asarray(truth[k][i], jnp.float32) for k in bm.spec.names if k not in names}
        v = jnp.asarray([truth[nm][i] for nm in names], jnp.float32)
        m, jac = (np.asarray(a, np.float64) for a in f_and_j(v, fixed))
        a = np.concatenate([cont[:, None] * jac, m[:, None] * design], axis=1)
        fisher = a.T @ (a * w[:, None])
        # Jacobi scaling before the pseudo-inverse (a vsini at 0 has no information: zero column)
        d = np.sqrt(np.diag(fisher))
        d[d == 0] = 1.0
        cov = np.linalg.pinv(fisher / np.outer(d, d), hermitian=True) / np.outer(d, d)
        out[i] = np.sqrt(np.maximum(np.diag(cov)[: len(names)], 0.0))
    return out


def limits(sigma, names):
    row = {}
    for name, tol, need in CRITERIA:
        s = sigma[:, names.index(name)]
        row[name] = {"information_limit": information_limit(s, tol), "required": need,
                     "median_sigma": float(np.median(s)), "p90_sigma": float(np.percentile(s, 90))}
    return row


def run(bands, n=200, seed=1, snr=50.0, degree=2):
    import jaxspec
    from jaxspec.linelist.generator import LineListGenerator
    from jaxspec.models import BinaryModel

    rng = np.random.default_rng(seed)
    _, _, _, truth, _, _, extra = setup_default(n, 0, rng, snr)  # bench_recovery's binaries
    rows = []
    cases = [("emulator", "default")] + [("generator", b) for b in bands]
    for kind, band in cases:
        t0 = time.perf_counter()
        segments = BANDS[band]
        wave = observed_wave(segments)
        if kind == "emulator":
            model = jaxspec.default_model()
            wave = np.arange(4990.0, 5310.0, 0.2)  # exactly bench_recovery's pixels
        else:
            model = LineListGenerator(wave_min=segments[0][0] - 40.0, wave_max=segments[-1][1] + 40.0,
                                      pixel_kms=3.0, label_bounds=BOX)
        bm = BinaryModel(model, wave, resolution=7500.0)
        sigma = cramer_rao(bm, truth, snr, extra["slope"], degree)
        worst = np.argsort(-sigma[:, bm.spec.free.index("rv_2")])[:10]
        rows.append({"model": kind, "band": band, "segments": segments, "n_pixels": int(wave.size),
                     "criteria": limits(sigma, list(bm.spec.free)), "seconds": time.perf_counter() - t0,
                     "largest_rv_2_sigma": [{"sigma_rv_2": float(sigma[j, bm.spec.free.index("rv_2")]),
                                             **{k: float(truth[k][j]) for k in bm.spec.names}}
                                            for j in worst]})
        print(f"{kind} {band}: {time.perf_counter() - t0:.0f} s", flush=True)
    return {"n": n, "seed": seed, "snr": snr, "resolution": 7500.0, "continuum_degree": degree,
            "rows": rows}


def table(result) -> str:
    names = [c[0] for c in CRITERIA]
    head = f"{'model':9s} {'band':8s} {'pixels':>6s} " + " ".join(f"{n:>10s}" for n in names)
    lines = [f"Information limits: fraction within tolerance an efficient unbiased fit would reach "
             f"({result['n']} binaries, S/N {result['snr']:g}, R 7,500)", head,
             f"{'required':25s}" + " ".join(f"{need:10.2f}" for _, _, need in CRITERIA)]
    for r in result["rows"]:
        lines.append(f"{r['model']:9s} {r['band']:8s} {r['n_pixels']:6d} " + " ".join(
            f"{r['criteria'][n]['information_limit']:10.3f}" for n in names))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1, help="bench_recovery's seed: the same binaries")
    ap.add_argument("--snr", type=float, default=50.0)
    ap.add_argument("--bands", nargs="+", choices=tuple(BANDS), default=list(BANDS))
    ap.add_argument("--out", type=Path, default=RESULTS / "information_default.json")
    a = ap.parse_args(argv)
    result = run(a.bands, a.n, a.seed, a.snr)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
