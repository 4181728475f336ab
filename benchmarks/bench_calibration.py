"""Calibration of sample_binary_batch: do the credible intervals cover the truth as often as they claim?

Truths are drawn from the sampler's own prior, spectra simulated with noise,
and posteriors sampled; for a calibrated sampler the central 68 % (95 %)
interval of each parameter covers the truth in 68 % (95 %) of cases, up to
binomial scatter. Acceptance (issue 5): coverage 60-76 % and 90-98 % for
teff_1, teff_2, logg_1, feh, rv_1, rv_2, flux_ratio, vsini_1 over >= 100
binaries; r_hat < 1.01 and bulk ESS >= 400 for >= 95 % of the posteriors.

Two models:

* ``--model default``: the bundled default emulator, 4990-5310 A at 0.2 A,
  R = 7,500, S/N 30 (as ``bench_recovery.py`` but S/N 30); the prior (and
  the truths): labels uniform in the emulator's box, rv_1, rv_2 uniform in
  +-100 km/s, vsini uniform in 0-40 km/s, flux_ratio uniform in 0.2-1.
* ``--model toy``: a small analytic line model (:func:`toy_model`, 40
  Gaussian lines on 5000-5080 A whose depths depend linearly on teff, logg
  and feh), no LSF, S/N 30; the same prior shape. It costs about a hundredth
  of the emulator per evaluation: the in-suite test runs it.

By default each spectrum gets its own :func:`jaxspec.sample_binary` (chains
on the CPU cores) and its record goes to a JSON-lines log as soon as it is
done, so a long run can be stopped and resumed; ``--batch`` sends all spectra
through one ``sample_binary_batch`` program instead. Writes JSON to
``benchmarks/records/calibration_<model>.json`` and prints the table.

    python benchmarks/bench_calibration.py --model default --n 100   # hours on 2 cores; resumable (--log)
    python benchmarks/bench_calibration.py --model toy --n 12
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "records"
PARAMS = ("teff_1", "teff_2", "logg_1", "feh", "rv_1", "rv_2", "flux_ratio", "vsini_1")
TARGET = {0.68: (0.60, 0.76), 0.95: (0.90, 0.98)}
RV_MAX, VSINI_MAX, Q_MIN = 100.0, 40.0, 0.2


class ToyModel:
    """40 Gaussian absorption lines (rest width 8 km/s) on 5000-5080 A, 3 km/s pixels.

    Line depth ``d_j = sigmoid(a_j + b_j t + c_j g + e_j f)`` with t, g, f the
    scaled labels: lines of different sensitivity, so teff, logg and feh are
    all measurable. Labels: teff 4500-6500 K, logg 3.5-5.0, feh -1.0-0.3.
    """

    label_names = ("teff", "logg", "feh")

    def __init__(self, seed: int = 7):
        from jaxspec.physics.constants import C_KMS

        rng = np.random.default_rng(seed)
        dln = 3.0 / C_KMS
        self.wave = np.exp(np.arange(np.log(5000.0), np.log(5080.0), dln))
        self.label_bounds = np.array([[4500.0, 6500.0], [3.5, 5.0], [-1.0, 0.3]])
        n = 40
        self._centre = np.log(rng.uniform(5004.0, 5076.0, n))
        self._coef = np.stack([rng.uniform(-1.5, 0.5, n), rng.normal(0, 1.2, n), rng.normal(0, 0.8, n),
                               rng.uniform(0.5, 1.5, n)], axis=1)
        self._sigma = 8.0 / C_KMS

    def flux(self, labels):
        import jax
        import jax.numpy as jnp

        lo, hi = (jnp.asarray(b, labels.dtype) for b in self.label_bounds.T)
        x = 2.0 * (labels - lo) / (hi - lo) - 1.0
        c = jnp.asarray(self._coef, labels.dtype)
        depth = 0.8 * jax.nn.sigmoid(c[:, 0] + c[:, 1] * x[0] + c[:, 2] * x[1] + c[:, 3] * x[2])
        lnw = jnp.log(jnp.asarray(self.wave, labels.dtype))
        prof = jnp.exp(-0.5 * ((lnw[:, None] - jnp.asarray(self._centre, labels.dtype)) / self._sigma) ** 2)
        return 1.0 - prof @ depth


def _toy_flatten(m):
    return (m._centre, m._coef), (m.wave.tobytes(), m.label_bounds.tobytes(), m._sigma)


def _toy_unflatten(aux, children):
    m = object.__new__(ToyModel)
    m._centre, m._coef = children
    m.wave = np.frombuffer(aux[0]).copy()
    m.label_bounds = np.frombuffer(aux[1]).reshape(3, 2).copy()
    m._sigma = aux[2]
    return m


def _register():
    import jax

    # A pytree of arrays, as the fitter expects of a spectral model (it passes the leaves to its jitted fit).
    jax.tree_util.register_pytree_node(ToyModel, _toy_flatten, _toy_unflatten)


def toy_model():
    """The toy spectral model (cached)."""
    global _TOY
    try:
        return _TOY
    except NameError:
        _register()
        _TOY = ToyModel()
        return _TOY


def setup(name):
    """``(model, wave, resolution, options)`` of a benchmark model."""
    if name == "default":
        import jaxspec

        return jaxspec.default_model(), np.arange(4990.0, 5310.0, 0.2), 7500.0, {}
    if name == "toy":
        m = toy_model()
        return m, m.wave[30:-30], None, {"rv_range": 150.0}
    raise ValueError(f"unknown model {name!r}")


def priors():
    """The prior of the calibration (and of its truths)."""
    return {"rv_1": (-RV_MAX, RV_MAX), "rv_2": (-RV_MAX, RV_MAX), "vsini_1": (0.0, VSINI_MAX),
            "vsini_2": (0.0, VSINI_MAX), "flux_ratio": (Q_MIN, 1.0)}


def draw_truths(bm, n, rng):
    """Truths from the prior: uniform in every window (the spec's box for labels)."""
    p = priors()
    out = {}
    for par in bm.spec.params:
        lo, hi = p.get(par.name, (par.lower, par.upper))
        out[par.name] = np.full(n, par.fixed) if par.fixed is not None else rng.uniform(lo, hi, n)
    return out


def coverage(posts, truth, params=PARAMS):
    """Fraction of cases whose central 68 % and 95 % intervals contain the truth, per parameter."""
    out = {}
    for name in params:
        row = {}
        for level in (0.68, 0.95):
            hit = [lo <= truth[name][i] <= hi
                   for i, p in enumerate(posts) for lo, hi in [p.interval(name, level)]]
            row[str(level)] = float(np.mean(hit))
        out[name] = row
    return out


def run(model_name="toy", n=12, seed=0, snr=30.0, num_warmup=300, num_samples=500, chunk_size=16,
        max_samples=None):
    """Simulate ``n`` binaries from the prior, sample them, and return the result dict and the posteriors."""
    from jaxspec.fit.binary import _get_fitter, _options
    from jaxspec.infer import sample_binary_batch
    from jaxspec.simulate import simulate

    model, wave, resolution, opts = setup(model_name)
    bm = _get_fitter(model, wave, resolution, _options(model, **opts), None).bm
    rng = np.random.default_rng(seed)
    truth = draw_truths(bm, n, rng)
    flux, err, _ = simulate(bm, truth, rng, snr=snr)
    t0 = time.perf_counter()
    posts = sample_binary_batch(flux, wave, err, model=model, resolution=resolution, priors=priors(),
                                num_warmup=num_warmup, num_samples=num_samples, chunk_size=chunk_size,
                                max_samples=max_samples,
                                seed=seed, **opts)
    wall = time.perf_counter() - t0
    cov = coverage(posts, truth)
    diag = [p.diagnostics() for p in posts]
    rhat_ok = [all(d[k]["r_hat"] < 1.01 for k in PARAMS) for d in diag]
    ess_ok = [all(d[k]["ess_bulk"] >= 400 for k in PARAMS) for d in diag]
    result = {
        "model": model_name, "n": n, "snr": snr, "seed": seed, "num_warmup": num_warmup,
        "num_samples": num_samples, "max_samples": max_samples, "num_chains": 4, "prior": posts[0].prior,
        "draws_per_chain": [p.num_draws for p in posts], "coverage": cov,
        "target": {str(k): v for k, v in TARGET.items()},
        "coverage_pass": {k: all(TARGET[lv][0] <= v[str(lv)] <= TARGET[lv][1] for lv in TARGET)
                          for k, v in cov.items()},
        "fraction_rhat_lt_1.01": float(np.mean(rhat_ok)), "fraction_ess_bulk_ge_400": float(np.mean(ess_ok)),
        "fraction_multimodal": float(np.mean([p.multimodal for p in posts])),
        "divergence_fraction": float(np.mean([p.diverging.mean() for p in posts])),
        "wall_s": wall, "per_posterior_s": wall / n,
        "machine": {"python": platform.python_version()},
    }
    return result, posts, truth


def coverage_intervals(cov, n):
    """Clopper-Pearson 95 % intervals of each coverage fraction (``n`` posteriors): the binomial
    scatter a table of ``n`` cases carries. A nominal level (0.68, 0.95) outside its interval is a
    miss at the 5 % level for that one entry; among 16 entries, about one such miss is expected by
    chance."""
    from scipy.stats import binomtest

    out = {}
    for k, row in cov.items():
        out[k] = {}
        for lv, frac in row.items():
            ci = binomtest(int(round(frac * n)), n).proportion_ci(0.95, method="exact")
            out[k][lv] = [float(ci.low), float(ci.high)]
    return out


def pass_probability(n, n_params, trials=20000, seed=0):
    """Probability that an exactly calibrated sampler puts all ``2 n_params`` coverage entries of a
    table of ``n`` posteriors inside their TARGET bands (parameters independent, truths' ranks
    uniform; a Monte Carlo of ``trials`` tables): how strict the acceptance line is at this ``n``."""
    rng = np.random.default_rng(seed)
    ok = np.ones(trials, bool)
    for _ in range(n_params):
        u = rng.uniform(size=(trials, n))
        for lv, (lo, hi) in TARGET.items():
            frac = np.mean(np.abs(u - 0.5) <= lv / 2, axis=1)
            ok &= (frac >= lo) & (frac <= hi)
    return float(np.mean(ok))


def _summary(records, params=PARAMS):
    """The acceptance table from per-posterior records (see :func:`run_incremental`)."""
    cov = {k: {str(lv): float(np.mean([r["cover"][k][str(lv)] for r in records])) for lv in TARGET}
           for k in params}
    return {
        "n": len(records), "coverage": cov,
        "coverage_pass": {k: all(TARGET[lv][0] <= v[str(lv)] <= TARGET[lv][1] for lv in TARGET)
                          for k, v in cov.items()},
        "fraction_rhat_lt_1.01": float(np.mean([max(r["r_hat"].values()) < 1.01 for r in records])),
        "fraction_ess_bulk_ge_400": float(np.mean([min(r["ess_bulk"].values()) >= 400 for r in records])),
        "fraction_rhat_and_ess": float(np.mean([max(r["r_hat"].values()) < 1.01
                                                and min(r["ess_bulk"].values()) >= 400 for r in records])),
        # Within the main mode (what BinaryPosterior.flag judges for a multimodal posterior) and
        # the sampler's own verdict (no r_hat, ESS or divergence flag).
        **_within_mode(records),
        "fraction_multimodal": float(np.mean([r["multimodal"] for r in records])),
        "divergence_fraction": float(np.mean([r["divergence_fraction"] for r in records])),
        "per_posterior_s": float(np.mean([r["sample_s"] for r in records])),
        # warmed up again after a diverging chain (records before that rule have no key: none)
        "fraction_rewarmed": float(np.mean([r.get("rewarms", 0) > 0 for r in records])),
    }


def _code_version():
    """``git describe`` of the checkout (``-dirty`` with uncommitted changes), or ``"unknown"``."""
    import subprocess

    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _within_mode(records):
    recs = [r for r in records if "r_hat_mode" in r]
    if not recs:
        return {}

    def worst(r, key, fn):
        # one-chain modes have no r_hat (NaN): judged on the other parameters' values
        v = [x for x in r[key].values() if np.isfinite(x)]
        return fn(v) if v else np.nan

    uni = [r for r in recs if not r["multimodal"]]
    return {
        "fraction_rhat_mode_lt_1.01": float(np.mean([
            (worst(r, "r_hat_mode", max) if r["multimodal"] else worst(r, "r_hat", max)) < 1.01
            for r in recs])),
        "fraction_ess_bulk_mode_ge_400": float(np.mean([
            (worst(r, "ess_bulk_mode", min) if r["multimodal"] else worst(r, "ess_bulk", min)) >= 400
            for r in recs])),
        "fraction_converged": float(np.mean([r["converged"] for r in recs])),
        "unimodal": {"n": len(uni),
                     "fraction_rhat_lt_1.01": float(np.mean([worst(r, "r_hat", max) < 1.01 for r in uni]))
                     if uni else None,
                     "fraction_ess_bulk_ge_400": float(np.mean([worst(r, "ess_bulk", min) >= 400
                                                                for r in uni])) if uni else None},
        "mean_leapfrog_steps": float(np.mean([r["mean_steps"] for r in recs])),
        "mean_draws_per_chain": float(np.mean([r.get("draws_per_chain", 500) for r in recs])),
    }


def _record(post, index, truth, code):
    """The JSON record of one posterior: coverage of the truth, diagnostics, modes, cost."""
    diag = post.diagnostics()
    cover = {k: {str(lv): bool(lo <= truth[k] <= hi) for lv in TARGET
                 for lo, hi in [post.interval(k, lv)]} for k in PARAMS}
    # where the truth falls in the posterior (fraction of draws below it): uniform on [0, 1] for a
    # calibrated sampler; tells a biased posterior (one-sided misses) from one too narrow
    pit = {k: float(np.mean(np.asarray(post.samples[k]) < truth[k])) for k in PARAMS}
    return {"index": index, "truth": truth, "cover": cover, "pit": pit,
            "r_hat": {k: float(diag[k]["r_hat"]) for k in PARAMS},
            "ess_bulk": {k: float(diag[k]["ess_bulk"]) for k in PARAMS},
            "r_hat_mode": {k: float(diag[k]["r_hat_mode"]) for k in PARAMS},
            "ess_bulk_mode": {k: float(diag[k]["ess_bulk_mode"]) for k in PARAMS},
            "multimodal": bool(post.multimodal), "mode_weights": [m["weight"] for m in post.modes],
            "mode_chains": [m["chains"] for m in post.modes],
            "divergence_fraction": float(post.diverging.mean()),
            "mean_steps": float(post.num_steps.mean()), "warmup_steps": post.warmup_steps.tolist(),
            "converged": bool(post.converged),
            "flag": post.flag_message, "flag_bits": int(post.flag),
            "sample_s": float(post.timing["sample_s"]), "code": code,
            "draws_per_chain": post.num_draws, "rewarms": int(post.settings.get("rewarms", 0))}


def rescore(log_path):
    """Recompute every record of a log from its saved posteriors with this checkout's diagnostics
    (flags, r_hat, ESS, intervals; the draws and modes are as sampled) and return the summary;
    nothing is sampled. Also the way to print the table of an unfinished run."""
    from jaxspec.infer import BinaryPosterior

    log_path = Path(log_path)
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    settings, old = lines[0]["settings"], lines[1:]
    post_dir = log_path.with_name(log_path.stem + "_posteriors")
    code = _code_version()
    records = []
    for r in old:
        path = post_dir / f"{r['index']:04d}.h5"
        if not path.exists():
            raise SystemExit(f"{path} is missing: cannot rescore {log_path}")
        rec = _record(BinaryPosterior.load(path), r["index"], r["truth"], r.get("code", "unknown"))
        rec.update(sample_s=r["sample_s"], rescored_with=code)
        records.append(rec)
    return {**settings, "rescored_with": code, "target": {str(k): v for k, v in TARGET.items()},
            **_summary(records), "machine": {"python": platform.python_version()}}


def jump_path_indices(model_name, flux, err, fits, seed):
    """Indices of the spectra whose posterior takes the mode-jump path of
    :func:`jaxspec.sample_binary` (two or more distinct optima after the fit; the others run the
    one-mode program, which a change to the jumps does not touch).

    Args:
        model_name: as :func:`setup`; flux, err: (n, P) spectra; fits: their batch fit; seed: the
            run's seed (spectrum ``i``'s chain starts use ``seed + i``, as in :func:`run_incremental`).
    """
    import jax.numpy as jnp

    from jaxspec.fit.binary import _get_fitter, _options
    from jaxspec.infer.model import make_prior
    from jaxspec.infer.sample import _check_settings, _get_sampler, _starts, _usable_modes

    model, wave, resolution, opts = setup(model_name)
    fitter = _get_fitter(model, wave, resolution, _options(model, **opts), None)
    sampler = _get_sampler(fitter, make_prior(fitter.bm.spec, priors()),
                           _check_settings(500, 250, 4, "marginal", 0.8, 8))
    out = []
    for i in range(len(flux)):
        d, w = (jnp.asarray(a, sampler.dtype) for a in (flux[i], 1.0 / err[i] ** 2))
        modes = _starts(sampler, fits[i], sampler.prior, 4, np.random.default_rng(seed + i), 9.0, d, w)[4]
        if _usable_modes(modes[0]) >= 2:
            out.append(i)
    return out


def _cap(settings):
    """Draws per chain at most of a logged run: its ``max_samples``, or, where the log left it at
    the default, ``6 * num_samples`` (the default before commit e94343d; every log written since
    names ``max_samples`` explicitly)."""
    return settings["max_samples"] or 6 * settings["num_samples"]


def _stopped_unconverged(record):
    """Whether a posterior stopped with an r_hat or low-ESS flag. Reads the flag bits; records
    written before they were logged hold only the flag's message, whose words are the FLAGS keys."""
    from jaxspec.infer.posterior import FLAGS

    if "flag_bits" in record:
        return bool(record["flag_bits"] & (FLAGS["r_hat"] | FLAGS["low_ess"]))
    words = {w.strip() for w in record["flag"].split(",")}
    return bool(words & {"r hat", "low ess"})


def combine(*logs):
    """The summary of several logs: runs of other seeds add their spectra (independent truths:
    n grows), and a later log of a seed already seen is a rerun of some of its spectra, whose
    records replace the earlier ones index by index (e.g. :func:`jump_path_indices` after a
    change to the mode jumps). All runs must share the model, S/N and iterations (settings equal
    but for ``seed``, ``n`` and ``max_samples``); reruns of a seed must have its ``n``. A rerun
    with a ``max_samples`` at least twice the base's must hold every spectrum whose posterior
    stopped with an r_hat or ESS flag: the others stopped because their diagnostics held, and a
    larger cap does not change them (:func:`jaxspec.infer.sample._wants_more` judges nothing in
    the first half of the cap, and the draws before a continuation are the same whatever the
    cap)."""
    runs = [[json.loads(x) for x in Path(p).read_text().splitlines() if x.strip()] for p in logs]

    def key(settings):
        return {k: v for k, v in settings.items() if k not in ("max_samples", "seed", "n")}

    bases, records, replaced = {}, {}, []
    for path, run in zip(logs, runs, strict=True):
        settings, recs = run[0]["settings"], run[1:]
        if key(settings) != key(runs[0][0]["settings"]):
            raise SystemExit(f"{logs[0]} and {path} have different settings")
        seed = settings["seed"]
        if seed not in bases:
            bases[seed] = settings
            records.update({(seed, r["index"]): r for r in recs})
            continue
        base = bases[seed]
        if settings["n"] != base["n"]:
            raise SystemExit(f"{path} reruns seed {seed} with n = {settings['n']}, not {base['n']}")
        caps = _cap(base), _cap(settings)
        if caps[1] != caps[0]:
            if caps[1] < 2 * caps[0]:
                raise SystemExit(f"{path}: max_samples {caps[1]} is neither {caps[0]} (the base's) nor "
                                 "at least twice it")
            new_idx = {r["index"] for r in recs}
            stale = sorted(i for (sd, i), r in records.items() if sd == seed and i not in new_idx
                           and _stopped_unconverged(r))
            if stale:
                raise SystemExit(f"{path} has a larger max_samples but lacks spectra {stale}, whose "
                                 "posteriors stopped with r_hat or ESS flags")
            base = bases[seed] = dict(base, max_samples=caps[1])
        records.update({(seed, r["index"]): r for r in recs})
        replaced += [f"{seed}:{r['index']}" for r in recs]
    records = [records[k] for k in sorted(records)]
    return {**runs[0][0]["settings"], "seeds": sorted(bases),
            "combined": {"logs": [str(p) for p in logs], "replaced": replaced},
            "target": {str(k): v for k, v in TARGET.items()}, **_summary(records),
            "machine": {"python": platform.python_version()}}


def run_incremental(model_name, n, seed, snr, num_warmup, num_samples, log_path, max_samples=None,
                    only=None):
    """One :func:`jaxspec.sample_binary` per spectrum (chains on the CPU cores), each posterior's
    record appended to ``log_path`` (JSON lines) as soon as it is done: a killed run keeps its
    finished posteriors and a rerun with the same settings continues after them. ``only``: sample
    just these indices of the ``n`` spectra (the same truths and noise as the full run), or
    ``"jump-path"``: those of :func:`jump_path_indices`."""
    import jaxspec
    from jaxspec.fit.binary import _get_fitter, _options
    from jaxspec.infer import sample_binary
    from jaxspec.infer.sample import _max_samples
    from jaxspec.simulate import simulate

    model, wave, resolution, opts = setup(model_name)
    bm = _get_fitter(model, wave, resolution, _options(model, **opts), None).bm
    rng = np.random.default_rng(seed)
    truth = draw_truths(bm, n, rng)
    flux, err, _ = simulate(bm, truth, rng, snr=snr)
    # the cap itself, not None: the sampler's default may change between sessions
    max_samples = _max_samples(max_samples, num_samples)
    settings = {"model": model_name, "n": n, "seed": seed, "snr": snr, "num_warmup": num_warmup,
                "num_samples": num_samples, "max_samples": max_samples}
    log_path = Path(log_path)
    records = []
    if log_path.exists():
        lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
        if lines and lines[0].get("settings") != settings:
            raise SystemExit(f"{log_path} holds a run with other settings {lines[0].get('settings')}; "
                             "remove it or pass another --log")
        records = [x for x in lines[1:]]
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(json.dumps({"settings": settings}) + "\n")
    done = {r["index"] for r in records}
    post_dir = log_path.with_name(log_path.stem + "_posteriors")
    post_dir.mkdir(parents=True, exist_ok=True)
    code = _code_version()
    fits = jaxspec.fit_binary_batch(flux, wave, err, model=model, resolution=resolution, **opts)
    if only == "jump-path":
        only = set(jump_path_indices(model_name, flux, err, fits, seed))
        print(f"{len(only)} of {n} spectra take the mode-jump path: {sorted(only)}", flush=True)
    for i in range(n):
        if i in done or (only is not None and i not in only):
            continue
        post = sample_binary(flux[i], wave, err[i], model=model, fit=fits[i], resolution=resolution,
                             priors=priors(), num_warmup=num_warmup, num_samples=num_samples,
                             max_samples=max_samples, seed=seed + i,
                             **opts)
        # The draws themselves, so that modes, intervals and diagnostics can be rescored later
        # without sampling again.
        post.save(post_dir / f"{i:04d}.h5")
        rec = _record(post, i, {k: float(v[i]) for k, v in truth.items()}, code)
        with log_path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        records.append(rec)
        s = _summary(records)
        print(f"[{len(records)}/{n}] {rec['sample_s']:.0f} s, {rec['flag']}; 68%: "
              f"{np.mean([v['0.68'] for v in s['coverage'].values()]):.3f} 95%: "
              f"{np.mean([v['0.95'] for v in s['coverage'].values()]):.3f}", flush=True)
    from jaxspec.infer.model import make_prior

    return {**settings, "prior": make_prior(bm.spec, priors()).describe(),
            "target": {str(k): v for k, v in TARGET.items()}, **_summary(records),
            "machine": {"python": platform.python_version()}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("default", "toy"), default="default")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--num-warmup", type=int, default=500)
    ap.add_argument("--num-samples", type=int, default=250)
    ap.add_argument("--chunk-size", type=int, default=16)
    ap.add_argument("--max-samples", type=int, default=None,
                    help="draws per chain at most (sample_binary's default: 12 x --num-samples; chains "
                         "continue past --num-samples while r_hat > 1.01 or bulk ESS < 400)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--batch", action="store_true",
                    help="all spectra through sample_binary_batch (vectorized chains) instead of one "
                         "sample_binary per spectrum with a resumable log")
    ap.add_argument("--rescore", action="store_true",
                    help="sample nothing: recompute the records of --log from its saved posteriors and "
                         "print the table (also for a run that has not finished)")
    ap.add_argument("--log", default=None, help="JSON-lines log of finished posteriors (one-by-one mode; "
                    "default benchmarks/records/calibration_<model>.jsonl)")
    ap.add_argument("--only", default=None,
                    help="sample only these spectra of the --n drawn: comma-separated indices, or "
                         "'jump-path' for those whose posteriors take the mode-jump path")
    ap.add_argument("--combine", nargs="+", metavar="LOG", default=None,
                    help="sample nothing: the table of several logs (other seeds add spectra; a later log "
                         "of a seed already given is a rerun whose records replace the earlier ones)")
    args = ap.parse_args(argv)
    import jax

    from jaxspec._machine import cpu_model

    if args.combine:
        result = combine(*args.combine)
    elif args.rescore:
        result = rescore(Path(args.log) if args.log else RESULTS / f"calibration_{args.model}.jsonl")
    elif args.batch:
        result, _, _ = run(args.model, args.n, args.seed, args.snr, args.num_warmup, args.num_samples,
                           args.chunk_size, args.max_samples)
    else:
        log = Path(args.log) if args.log else RESULTS / f"calibration_{args.model}.jsonl"
        only = args.only if args.only in (None, "jump-path") else {int(x) for x in args.only.split(",")}
        result = run_incremental(args.model, args.n, args.seed, args.snr, args.num_warmup, args.num_samples,
                                 log, args.max_samples, only=only)
    result["machine"].update(cpu=cpu_model(), backend=jax.default_backend(), jax=jax.__version__,
                             x64=bool(jax.config.jax_enable_x64))
    # the table's binomial scatter, once per run (not after every posterior of a long log)
    result.update(coverage_ci95=coverage_intervals(result["coverage"], result["n"]),
                  pass_probability_if_calibrated=pass_probability(result["n"], len(result["coverage"])))
    ci = result["coverage_ci95"]
    print(f"{'parameter':12s} {'68% cover':>10s} {'(95% CI)':>13s} {'95% cover':>10s} {'(95% CI)':>13s}  pass"
          "   (targets 0.60-0.76, 0.90-0.98)")
    for k, v in result["coverage"].items():
        print(f"{k:12s} {v['0.68']:10.3f} {ci[k]['0.68'][0]:6.2f}-{ci[k]['0.68'][1]:.2f} {v['0.95']:10.3f} "
              f"{ci[k]['0.95'][0]:6.2f}-{ci[k]['0.95'][1]:.2f}  {result['coverage_pass'][k]}")
    print(f"an exactly calibrated sampler passes every band at n = {result['n']} with probability "
          f"{result['pass_probability_if_calibrated']:.2f}")
    if "fraction_rhat_and_ess" in result:
        print(f"r_hat < 1.01 and bulk ESS >= 400: {result['fraction_rhat_and_ess']:.3f} (target >= 0.95)")
    print(f"r_hat < 1.01: {result['fraction_rhat_lt_1.01']:.3f}; bulk ESS >= 400: "
          f"{result['fraction_ess_bulk_ge_400']:.3f}; multimodal "
          f"{result['fraction_multimodal']:.3f}; warmed up again {result['fraction_rewarmed']:.3f}; "
          f"{result['per_posterior_s']:.1f} s per posterior")
    if "fraction_converged" in result:
        print(f"within modes: r_hat < 1.01 {result['fraction_rhat_mode_lt_1.01']:.3f}, bulk ESS >= 400 "
              f"{result['fraction_ess_bulk_mode_ge_400']:.3f}; converged (no r_hat/ESS/divergence flag) "
              f"{result['fraction_converged']:.3f}; draws per chain {result['mean_draws_per_chain']:.0f}; "
              f"n = {result['n']}")
    if args.out:
        out = Path(args.out)
    elif args.rescore:
        out = RESULTS / f"calibration_{args.model}_rescored.json"
    elif args.combine:
        out = RESULTS / f"calibration_{args.model}_combined.json"
    else:
        out = RESULTS / f"calibration_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("wrote", out)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
