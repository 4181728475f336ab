"""The line-list generator against the observed Sun.

The generator at the Sun's labels (5772 K, 4.438, 0.0) is rotated
(vsini = 1.9 km/s), convolved to the UVES resolution and compared with the
observed UVES solar spectrum on 4950-5400 A (vacuum) with only a velocity
shift fitted. Reported, for the uncalibrated and the calibrated built-in
list:

* rms of model - observed over all pixels and over in-line pixels
  (observed flux < 0.95), and the fitted velocity shift;
* the velocity left after the fitted shift: the shift re-measured in 9
  independent 50 A chunks against the shifted model (median and rms);
* the H-beta region (4845-4880 A) on its own;
* depths of isolated lines against the observed ones (Pearson r);
* a hold-out test of the calibration: calibrate on 4950-5150 A alone, report
  the rms on 5150-5400 A before and after.

Writes ``benchmarks/records/bench_sun.json`` and a comparison plot
(observed, model, residuals; two 20 A zooms) to
``benchmarks/results/bench_sun.png`` (``--plot``); prints a table.

Usage: python benchmarks/bench_sun.py [--out PATH] [--plot PATH] [--skip-holdout]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.demo import (
    SUN_LABELS,
    SUN_VSINI,
    UVES_RESOLUTION,
    find_solar_spectrum,
    load_solar_spectrum,
)
from jaxspec.linelist.builtin import builtin_linelist
from jaxspec.linelist.calibrate import calibrate_loggf, fit_velocity
from jaxspec.linelist.generator import LineListGenerator
from jaxspec.physics.grid import make_resampler
from jaxspec.physics.observe import observe

BAND = (4950.0, 5400.0)
HBETA = (4845.0, 4880.0)
HOLDOUT_FIT = (4950.0, 5150.0)
HOLDOUT_TEST = (5150.0, 5400.0)
RESULTS = Path(__file__).resolve().parent / "records"


def observed_model(gen, wave, flux, *, rv=None):
    """Model on the observed pixels with a fitted (or given) velocity shift."""
    model = gen.flux(jnp.asarray(SUN_LABELS))
    if rv is None:
        rv, _ = fit_velocity(model, gen, wave, flux, vsini=SUN_VSINI, resolution=UVES_RESOLUTION)
    res = make_resampler(gen.wave, wave)
    out = observe(model, gen._dlnlam, res, rv=rv, vsini=SUN_VSINI, resolution=UVES_RESOLUTION)
    return np.asarray(out, dtype=np.float64), rv, model


def rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def residual_velocity(gen, model, wave, flux, rv, n_chunks=9):
    """Velocity shifts re-measured in chunks against the model already shifted by ``rv``."""
    edges = np.linspace(BAND[0], BAND[1], n_chunks + 1)
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = (wave >= a) & (wave < b)
        v, _ = fit_velocity(
            model, gen, wave[sel], flux[sel], vsini=SUN_VSINI, resolution=UVES_RESOLUTION,
            rv_range=(rv - 1.0, rv + 1.0), rv_step=0.02,
        )
        out.append(v - rv)
    return np.array(out)


def isolated_line_depths(gen, wave, flux, model_obs, rv, *, min_depth=0.05):
    """Observed and model central depths of isolated lines in the band.

    A line is isolated when every other line within +-0.25 A has a central
    opacity ratio (at the Sun) below 5% of its own, and it is not within 1 A
    of a line ten times stronger.
    """
    s, sig, _ = gen._line_params(jnp.asarray(SUN_LABELS), jnp.zeros(gen.n_lines))
    peak = np.asarray(s / (np.sqrt(2 * np.pi) * sig))
    lw = np.asarray(gen.linelist.wave) * (1 + rv / 299792.458)
    order = np.argsort(lw)
    lw, peak = lw[order], peak[order]
    obs_d, mod_d = [], []
    for i in np.flatnonzero((lw > BAND[0] + 1) & (lw < BAND[1] - 1) & (peak > 0.05)):
        near = (np.abs(lw - lw[i]) < 0.25) & (np.arange(lw.size) != i)
        wide = np.abs(lw - lw[i]) < 1.0
        if np.any(peak[near] > 0.05 * peak[i]) or np.any(peak[wide] > 10 * peak[i]):
            continue
        sel = np.abs(wave - lw[i]) < 0.06
        if sel.sum() < 3:
            continue
        d_mod = 1 - model_obs[sel].min()
        if d_mod < min_depth:
            continue
        obs_d.append(1 - flux[sel].min())
        mod_d.append(d_mod)
    return np.array(obs_d), np.array(mod_d)


def evaluate(linelist, wave, flux, hb_wave, hb_flux, label):
    gen = LineListGenerator(linelist, HBETA[0] - 15.0, BAND[1] + 15.0)
    model_obs, rv, model = observed_model(gen, wave, flux)
    resid = model_obs - flux
    inline = flux < 0.95
    dv = residual_velocity(gen, model, wave, flux, rv)
    hb_model, _, _ = observed_model(gen, hb_wave, hb_flux, rv=rv)
    obs_d, mod_d = isolated_line_depths(gen, wave, flux, model_obs, rv)
    return {
        "list": label,
        "n_lines_in_band": int(np.sum((gen.linelist.wave > BAND[0]) & (gen.linelist.wave < BAND[1]))),
        "rv_shift_kms": rv,
        "rms_all": rms(resid),
        "rms_inline": rms(resid[inline]),
        "residual_rv_median_kms": float(np.median(dv)),
        "residual_rv_rms_kms": rms(dv),
        "hbeta_rms": rms(hb_model - hb_flux),
        "isolated_lines": int(obs_d.size),
        "isolated_depth_r": float(np.corrcoef(obs_d, mod_d)[0, 1]) if obs_d.size > 2 else float("nan"),
    }, (gen, model_obs)


def holdout(wave, flux, steps):
    """Calibrate on HOLDOUT_FIT only; rms on HOLDOUT_TEST before and after."""
    ll = builtin_linelist(calibrated=False)
    gen = LineListGenerator(ll, HOLDOUT_FIT[0] - 10.0, HOLDOUT_FIT[1] + 10.0)
    sel = (wave >= HOLDOUT_FIT[0]) & (wave <= HOLDOUT_FIT[1])
    res = calibrate_loggf(
        gen, SUN_LABELS, wave[sel], flux[sel], vsini=SUN_VSINI, resolution=UVES_RESOLUTION,
        rv=0.3, steps=steps,
    )
    loggf = np.array(ll.loggf, dtype=np.float64)
    loggf[gen.line_index] += res.offsets
    cal = ll.select(np.arange(len(ll)))
    cal = type(ll)(**{**{f: getattr(cal, f) for f in cal.__dataclass_fields__}, "loggf": loggf})
    test = (wave >= HOLDOUT_TEST[0]) & (wave <= HOLDOUT_TEST[1])
    out = {"fit_rms_before": res.rms_before, "fit_rms_after": res.rms_after}
    for name, lst in (("before", ll), ("after", cal)):
        g = LineListGenerator(lst, HOLDOUT_TEST[0] - 10.0, HOLDOUT_TEST[1] + 10.0)
        m, _, _ = observed_model(g, wave[test], flux[test])
        out[f"test_rms_{name}"] = rms(m - flux[test])
    out["test_rms_change"] = out["test_rms_after"] / out["test_rms_before"] - 1.0
    return out


def plot(path, wave, flux, model_obs, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 8))
    gs = fig.add_gridspec(3, 2, height_ratios=(2.2, 1, 2.2))
    ax0 = fig.add_subplot(gs[0, :])
    ax1 = fig.add_subplot(gs[1, :], sharex=ax0)
    ax0.plot(wave, flux, "k", lw=0.4, label="observed Sun (UVES)")
    ax0.plot(wave, model_obs, "C3", lw=0.4, label="jaxspec generator (calibrated list)")
    ax0.legend(loc="lower left", fontsize=8)
    ax0.set_ylabel("normalized flux")
    ax0.set_title(title)
    ax1.plot(wave, model_obs - flux, "k", lw=0.3)
    ax1.set_ylabel("model - obs")
    ax1.set_xlabel("vacuum wavelength [A]")
    for j, (a, b) in enumerate(((5165.0, 5185.0), (5320.0, 5340.0))):
        ax = fig.add_subplot(gs[2, j])
        sel = (wave >= a) & (wave <= b)
        ax.plot(wave[sel], flux[sel], "k", lw=0.8)
        ax.plot(wave[sel], model_obs[sel], "C3", lw=0.8)
        ax.plot(wave[sel], model_obs[sel] - flux[sel] - 0.1, "C0", lw=0.6)
        ax.set_xlabel("vacuum wavelength [A]")
        ax.set_title(f"zoom {a:.0f}-{b:.0f} A (blue: residual - 0.1)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(RESULTS / "bench_sun.json"))
    ap.add_argument("--plot", default=str(RESULTS.parent / "results" / "bench_sun.png"))
    ap.add_argument("--skip-holdout", action="store_true")
    ap.add_argument("--holdout-steps", type=int, default=150)
    args = ap.parse_args(argv)
    path = find_solar_spectrum()
    if path is None:
        raise SystemExit("observed solar spectrum not found; set JAXSPEC_SHARED_DATA")
    t0 = time.perf_counter()
    wave, flux = load_solar_spectrum(path, *BAND)
    hb_wave, hb_flux = load_solar_spectrum(path, *HBETA)
    rows = []
    for cal in (False, True):
        row, (gen, model_obs) = evaluate(
            builtin_linelist(calibrated=cal), wave, flux, hb_wave, hb_flux,
            "calibrated" if cal else "uncalibrated",
        )
        rows.append(row)
    result = {
        "band": BAND,
        "labels": SUN_LABELS,
        "vsini_kms": SUN_VSINI,
        "resolution": UVES_RESOLUTION,
        "rows": rows,
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "machine": platform.machine(),
    }
    if not args.skip_holdout:
        result["holdout"] = holdout(*load_solar_spectrum(path, HOLDOUT_FIT[0], HOLDOUT_TEST[1]),
                                    args.holdout_steps)
    result["seconds"] = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        c = rows[1]
        plot(args.plot, wave, flux, model_obs,
             f"The Sun, 4950-5400 A: rms {c['rms_all']:.3f} (all), {c['rms_inline']:.3f} (in lines), "
             "calibrated list")
    keys = ["rms_all", "rms_inline", "rv_shift_kms", "residual_rv_median_kms", "hbeta_rms",
            "isolated_depth_r"]
    print(f"{'list':14s}" + "".join(f"{k:>24s}" for k in keys))
    for r in rows:
        print(f"{r['list']:14s}" + "".join(f"{r[k]:24.4f}" for k in keys))
    if "holdout" in result:
        h = result["holdout"]
        print(f"hold-out: calibrate on {HOLDOUT_FIT}, rms on {HOLDOUT_TEST}: "
              f"{h['test_rms_before']:.4f} -> {h['test_rms_after']:.4f} ({100 * h['test_rms_change']:+.1f}%)")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
