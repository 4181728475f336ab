"""The amortized predictor against the fit, and three SB2 detectors at 1 % false positives.

Populations (``jaxspec.amortized.simulate_training_set``, seeds independent of training;
the bundled emulator at R 7,500 on the network's grid 4965-5335 A):

* **accuracy**: ``--n`` binaries at S/N 50 (flux ratio 0.1-1, independent rvs within
  +-150 km/s, vsini 0-50 km/s) and ``--n-single`` single stars at S/N 50. The predictor's
  median absolute error of teff_1, teff_2, rv_1, rv_2, flux ratio (and the rest), the
  68 % coverage of its Gaussian spread, beside ``fit_binary_batch`` on the same spectra.
  The star order is the brighter first for the truth, the network and the fit alike.
* **detection**: ``--n-det`` binaries with |rv_1 - rv_2| 5-100 km/s, flux ratio 0.1-1, S/N
  10-100 (log-uniform) and ``--n-det-single`` single stars over the same S/N. Three
  detectors: the network's binary probability, the fit's delta BIC
  (``bic_single - bic_binary``), and a plain cross-correlation: the second-highest peak of
  the CCF with a solar template relative to the highest (peaks >= 15 km/s apart). Each
  detector's threshold is the 99th percentile of its score on the single stars (1 % false
  positives, measured); rates are tabulated per velocity separation, flux ratio and S/N bin,
  and for the headline subset of the accuracy population (|rv_1 - rv_2| >= 20 km/s, flux
  ratio >= 0.3, S/N 50; thresholds from its S/N 50 singles).
* **start**: on ``--n-start`` accuracy binaries, ``fit_binary_batch(init="amortized")`` (the
  network's prediction and its mirror join the TODCOR starts) against the default, in the
  same run: fraction reaching chi2 <= chi2(truth) + 1, iterations and time per fit; and
  Levenberg-Marquardt from the network's prediction and its mirror only
  (``jaxspec.fit.local_fits``), no global search.

    python benchmarks/bench_amortized.py                      # the issue's size (~25 min)
    python benchmarks/bench_amortized.py --n 20 --n-single 20 --n-det 20 --n-det-single 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "records"
SEP_BINS = [(5, 10), (10, 20), (20, 40), (40, 70), (70, 100)]
Q_BINS = [(0.1, 0.3), (0.3, 0.6), (0.6, 1.0)]
SNR_BINS = [(10, 25), (25, 50), (50, 100)]


def ccf_score(flux, wave, err, resolution):
    """Second-highest / highest CCF peak (>= 15 km/s apart) with a solar template, per spectrum."""
    import jax
    import jax.numpy as jnp

    import jaxspec
    from jaxspec.amortized import normalize_continuum
    from jaxspec.models import BinaryModel

    em = jaxspec.default_model()
    bm = BinaryModel(em, wave, resolution=resolution, rv_max=320.0)
    theta = {n: 0.0 for n in bm.spec.names}
    theta.update({"teff_1": 5700.0, "logg_1": 4.4, "teff_2": 5700.0, "logg_2": 4.4, "feh": 0.0, "vsini_1": 5.0,
                  "vsini_2": 5.0})
    theta = {k: jnp.asarray(v) for k, v in theta.items() if k in bm.spec.names}
    rvs = np.arange(-300.0, 300.1, 3.0)
    tmpl = []
    for v in rvs:
        th = dict(theta, rv_1=jnp.asarray(v))
        tmpl.append(1.0 - np.asarray(bm.flux(th)))
    tmpl = np.stack(tmpl)
    good = np.isfinite(flux) & (err > 0)
    fn = np.asarray(jax.jit(jax.vmap(normalize_continuum))(jnp.asarray(flux, jnp.float32), jnp.asarray(good)))
    y = np.where(good, 1.0 - fn, 0.0)
    ccf = y @ tmpl.T / np.sqrt(np.sum(tmpl**2, axis=1))[None, :]
    score = np.zeros(len(flux))
    for i, c in enumerate(ccf):
        peaks = np.flatnonzero((c[1:-1] > c[:-2]) & (c[1:-1] >= c[2:])) + 1
        if peaks.size < 2:
            continue
        order = peaks[np.argsort(-c[peaks])]
        top = order[0]
        rest = [p for p in order[1:] if abs(rvs[p] - rvs[top]) >= 15.0]
        if rest and c[top] > 0:
            score[i] = max(c[rest[0]], 0.0) / c[top]
    return score


def plot_detection(result: dict, path) -> None:
    """Detection rate per bin of separation, flux ratio and S/N for the three detectors (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = result["detection"]["detectors"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), sharey=True)
    labels = {"network": "amortized network", "delta_bic": "fit delta BIC", "ccf": "CCF second peak"}
    for ax, prefix, xlabel in zip(axes, ("sep", "q", "snr"), ("|rv_1 - rv_2| [km/s]", "flux ratio", "S/N"),
                                  strict=True):
        bins = [b for b in det["network"]["rates"] if b.startswith(prefix + " ")]
        centres = [sum(float(x) for x in b.split()[1].split("-")) / 2 for b in bins]
        for k, lab in labels.items():
            ax.plot(centres, [det[k]["rates"][b] for b in bins], "o-", label=lab)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("detected at 1 % false positives")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"SB2 detection, {result['detection']['n_binaries']:,} simulated binaries and "
                 f"{result['detection']['n_singles']} single stars (default band, R 7,500)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--n-single", type=int, default=500)
    p.add_argument("--n-det", type=int, default=1000)
    p.add_argument("--n-det-single", type=int, default=500)
    p.add_argument("--n-start", type=int, default=300, help="binaries for the start comparison")
    p.add_argument("--predictor", type=Path, default=None, help="an AmortizedPredictor file (default: bundled)")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--out", type=Path, default=RESULTS / "amortized.json")
    p.add_argument("--figure", type=Path, default=ROOT / "docs" / "images" / "detection.png")
    p.add_argument("--plot-only", action="store_true", help="only redraw --figure from the record --out")
    a = p.parse_args(argv)
    if a.plot_only:
        plot_detection(json.loads(a.out.read_text()), a.figure)
        return None

    import jax

    import jaxspec
    from jaxspec._machine import cpu_model
    from jaxspec.amortized import AmortizedPredictor, TARGETS, default_predictor, simulate_training_set
    from jaxspec.fit import local_fits
    from jaxspec.fit.binary import chi2_at

    pred = default_predictor() if a.predictor is None else AmortizedPredictor.load(a.predictor)
    R = pred.resolution
    rng = np.random.default_rng(a.seed)
    wave = pred.wave

    # ---- accuracy population (S/N 50)
    acc = simulate_training_set(a.n, rng, binary_fraction=1.0, snr=(50.0, 50.0))
    sgl = simulate_training_set(a.n_single, rng, binary_fraction=0.0, snr=(50.0, 50.0))
    t0 = time.perf_counter()
    out = pred.predict(acc["flux"], wave)
    t_pred = (time.perf_counter() - t0) / a.n
    truth = acc["targets"]
    tq = truth[:, -1] / (1 - truth[:, -1])
    names = ["teff_1", "teff_2", "rv_1", "rv_2", "flux_ratio", "logg_1", "logg_2", "feh", "vsini_1", "vsini_2"]
    col = {t: k for k, t in enumerate(TARGETS)}
    tr = {n_: (tq if n_ == "flux_ratio" else truth[:, col[n_]]) for n_ in names}
    def pair_error(o1, o2, t1, t2):
        return np.minimum(np.abs(o1 - t1) + np.abs(o2 - t2), np.abs(o1 - t2) + np.abs(o2 - t1)) / 2

    order_free = {"rv": float(np.median(pair_error(out["rv_1"], out["rv_2"], tr["rv_1"], tr["rv_2"]))),
                  "teff": float(np.median(pair_error(out["teff_1"], out["teff_2"], tr["teff_1"], tr["teff_2"])))}
    net = {}
    for n_ in names:
        e = np.abs(out[n_] - tr[n_])
        net[n_] = {"median_abs_error": float(np.median(e)), "coverage_68": float(np.mean(e <= out[f"{n_}_err"]))}
    t0 = time.perf_counter()
    fit = jaxspec.fit_binary_batch(np.concatenate([acc["flux"], sgl["flux"]]), wave,
                                   np.concatenate([acc["err"], sgl["err"]]), resolution=R)
    t_fit = (time.perf_counter() - t0) / (a.n + a.n_single)
    fb = fit[: a.n]
    fitd = {n_: {"median_abs_error": float(np.median(np.abs(np.asarray(fb.params[n_]) - tr[n_]))),
                 "coverage_68": float(np.mean(np.abs(np.asarray(fb.params[n_]) - tr[n_])
                                              <= np.asarray(fb.errors[n_])))} for n_ in names}
    print(f"{'parameter':12s} {'network |err|':>14s} {'cover 68':>9s} {'fit |err|':>10s} {'cover 68':>9s}")
    for n_ in names:
        print(f"{n_:12s} {net[n_]['median_abs_error']:14.3f} {net[n_]['coverage_68']:9.3f} "
              f"{fitd[n_]['median_abs_error']:10.3f} {fitd[n_]['coverage_68']:9.3f}", flush=True)

    def rates(score_b, score_s, masks):
        thr = float(np.quantile(score_s, 0.99))
        return thr, {k: (float(np.mean(score_b[m] > thr)) if m.any() else None) for k, m in masks.items()}

    # headline: |drv| >= 20, q >= 0.3, S/N 50
    sep = np.abs(acc["params"]["rv_1"] - acc["params"]["rv_2"])
    head = (sep >= 20) & (tq >= 0.3)
    sg_out = pred.predict(sgl["flux"], wave)
    fs = fit[a.n:]
    ccf_b = ccf_score(acc["flux"], wave, acc["err"], R)
    ccf_s = ccf_score(sgl["flux"], wave, sgl["err"], R)
    headline = {}
    for name, sb, ss in (("network", out["p_binary"], sg_out["p_binary"]),
                         ("delta_bic", np.asarray(fb.bic_single - fb.bic_binary), np.asarray(fs.bic_single - fs.bic_binary)),
                         ("ccf", ccf_b, ccf_s)):
        thr, r = rates(sb, ss, {"headline": head})
        headline[name] = {"threshold": thr, "rate": r["headline"]}

    # ---- detection population
    det = simulate_training_set(a.n_det, rng, binary_fraction=1.0, snr=(10.0, 100.0), rv_difference=(5.0, 100.0))
    dsg = simulate_training_set(a.n_det_single, rng, binary_fraction=0.0, snr=(10.0, 100.0))
    dfit = jaxspec.fit_binary_batch(np.concatenate([det["flux"], dsg["flux"]]), wave,
                                    np.concatenate([det["err"], dsg["err"]]), resolution=R)
    dq = det["targets"][:, -1] / (1 - det["targets"][:, -1])
    dsep = np.abs(det["params"]["rv_1"] - det["params"]["rv_2"])
    masks = {f"sep {lo}-{hi}": (dsep >= lo) & (dsep < hi) for lo, hi in SEP_BINS}
    masks.update({f"q {lo}-{hi}": (dq >= lo) & (dq < hi) for lo, hi in Q_BINS})
    masks.update({f"snr {lo}-{hi}": (det["snr"] >= lo) & (det["snr"] < hi) for lo, hi in SNR_BINS})
    scores = {
        "network": (pred.predict(det["flux"], wave)["p_binary"], pred.predict(dsg["flux"], wave)["p_binary"]),
        "delta_bic": (np.asarray(dfit[: a.n_det].bic_single - dfit[: a.n_det].bic_binary),
                      np.asarray(dfit[a.n_det:].bic_single - dfit[a.n_det:].bic_binary)),
        "ccf": (ccf_score(det["flux"], wave, det["err"], R), ccf_score(dsg["flux"], wave, dsg["err"], R)),
    }
    table = {}
    for name, (sb, ss) in scores.items():
        thr, r = rates(sb, ss, masks)
        table[name] = {"threshold": thr, "rates": r}
    print(f"\nDetection at 1 % false positives ({a.n_det} binaries, {a.n_det_single} singles, S/N 10-100)")
    print(f"{'bin':14s} " + " ".join(f"{k:>10s}" for k in table))
    for m in masks:
        print(f"{m:14s} " + " ".join(f"{(table[k]['rates'][m] if table[k]['rates'][m] is not None else float('nan')):10.3f}"
                                     for k in table))
    print("headline (|drv| >= 20, q >= 0.3, S/N 50): " + ", ".join(f"{k} {v['rate']:.3f}" for k, v in headline.items()))

    # ---- the network's prediction as the only starts of a local fit
    ns = min(a.n_start, a.n)
    st = pred.starts(acc["flux"][:ns], wave)
    spec_names = list(acc["params"])
    chi_true = np.asarray(chi2_at({k: acc["params"][k][:ns] for k in spec_names}, acc["flux"][:ns], wave,
                                  acc["err"][:ns], resolution=R, continuum_degree=2))
    chi_local = np.empty(ns)
    t0 = time.perf_counter()
    for i in range(ns):
        s = {k: np.array([st[k][i], st[k.replace("_1", "_X").replace("_2", "_1").replace("_X", "_2")][i]])
             for k in spec_names if k != "flux_ratio"}
        s["flux_ratio"] = np.array([st["flux_ratio"][i], 1.0 / max(st["flux_ratio"][i], 1e-3)])
        s["flux_ratio"] = np.clip(s["flux_ratio"], 0.02, 0.98)
        r = local_fits(s, acc["flux"][i], wave, acc["err"][i], resolution=R, continuum_degree=2)
        chi_local[i] = np.nanmin(r["chi2"])
    t_local = (time.perf_counter() - t0) / ns
    chi_fit = np.asarray(fb.chi2)[:ns]
    jaxspec.fit_binary_batch(acc["flux"][:1], wave, acc["err"][:1], resolution=R, init="amortized")  # compile
    t0 = time.perf_counter()
    fa = jaxspec.fit_binary_batch(acc["flux"][:ns], wave, acc["err"][:ns], resolution=R, init="amortized")
    t_init = (time.perf_counter() - t0) / ns
    t0 = time.perf_counter()
    fd = jaxspec.fit_binary_batch(acc["flux"][:ns], wave, acc["err"][:ns], resolution=R)
    t_default = (time.perf_counter() - t0) / ns
    start = {"init_amortized_chi2_le_truth_plus_1": float(np.mean(np.asarray(fa.chi2) <= chi_true + 1)),
             "init_todcor_chi2_le_truth_plus_1": float(np.mean(np.asarray(fd.chi2) <= chi_true + 1)),
             "init_amortized_s_per_fit": t_init, "init_todcor_s_per_fit": t_default,
             "init_amortized_mean_iterations": float(np.mean(fa.n_iter)),
             "init_todcor_mean_iterations": float(np.mean(fd.n_iter)),"n": ns, "global_search_chi2_le_truth_plus_1": float(np.mean(chi_fit <= chi_true + 1)),
             "amortized_start_chi2_le_truth_plus_1": float(np.mean(chi_local <= chi_true + 1)),
             "global_search_s_per_fit": t_fit, "amortized_start_s_per_fit": t_local}
    print(f"\nstarts from the network only: chi2 <= truth + 1 {start['amortized_start_chi2_le_truth_plus_1']:.3f} "
          f"({t_local * 1000:.0f} ms per spectrum, local fits one by one) vs the global search "
          f"{start['global_search_chi2_le_truth_plus_1']:.3f} ({t_fit * 1000:.0f} ms, batched)")
    print(f"fit_binary init='amortized': chi2 <= truth + 1 {start['init_amortized_chi2_le_truth_plus_1']:.3f}, "
          f"{t_init * 1000:.0f} ms per fit; default {start['init_todcor_chi2_le_truth_plus_1']:.3f}, "
          f"{t_default * 1000:.0f} ms (same run, same {ns} spectra)")

    result = {"n": a.n, "n_single": a.n_single, "snr": 50.0, "resolution": R, "seed": a.seed,
              "network": net, "fit": fitd, "network_order_free_pair_median_abs_error": order_free, "network_ms_per_spectrum": 1000 * t_pred, "fit_ms_per_spectrum": 1000 * t_fit,
              "coverage_band": [0.60, 0.76], "headline_detection": headline, "required_headline": 0.95,
              "detection": {"n_binaries": a.n_det, "n_singles": a.n_det_single, "false_positive_rate": 0.01,
                            "detectors": table},
              "start": start, "predictor_meta": pred.meta, "predictor_threshold": pred.threshold,
              "device": str(jax.devices()[0].platform), "cpu": cpu_model(), "jax": jax.__version__}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    plot_detection(result, a.figure)
    print(f"wrote {a.out} and {a.figure}")
    return result


if __name__ == "__main__":
    main()
