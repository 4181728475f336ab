"""r_hat, bulk and tail ESS against ArviZ; mode grouping and Laplace mode masses."""

import numpy as np
import pytest

from jaxspec.infer.diagnostics import ess_bulk, ess_tail, find_modes, mode_log_mass, rhat


def _ar1(rng, chains=4, draws=500, phi=0.6):
    x = np.zeros((chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=chains)
    return x


def test_against_arviz():
    az = pytest.importorskip("arviz")
    x = _ar1(np.random.default_rng(1))
    assert rhat(x) == pytest.approx(float(az.rhat(x)), abs=2e-3)
    assert ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=0.05)
    assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=0.05)


def test_rhat_sees_disagreeing_chains_and_constant_draws_are_nan():
    x = _ar1(np.random.default_rng(2))
    x[0] += 3.0
    assert rhat(x) > 1.1
    assert np.isnan(rhat(np.ones((4, 100)))) and np.isnan(ess_bulk(np.ones((4, 100))))
    with pytest.raises(ValueError, match="chains, draws"):
        rhat(np.ones(10))


def test_find_modes():
    rng = np.random.default_rng(3)
    rv = np.concatenate([rng.normal(-10, 1, (2, 200)), rng.normal(10, 1, (2, 200))])
    q = rng.normal(0.8, 0.02, (4, 200))
    modes = find_modes({"rv_1": rv, "flux_ratio": q}, ("rv_1", "rv_2", "flux_ratio"))
    assert modes.tolist() == [0, 0, 1, 1]
    one = find_modes({"rv_1": rng.normal(0, 1, (4, 200))}, ("rv_1",))
    assert one.tolist() == [0, 0, 0, 0]
    three = find_modes({"rv_1": np.concatenate([rv[:1] - 20, rv])}, ("rv_1",))
    assert three.tolist() == [2, 0, 0, 1, 1] or three.tolist() == [2, 1, 1, 0, 0]


def test_mode_log_mass_is_exact_for_a_gaussian():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(4)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    z = rng.multivariate_normal([1.0, -1.0], cov, 4000)
    lp = np.log(0.3) + multivariate_normal([1.0, -1.0], cov).logpdf(z)
    assert mode_log_mass(z, lp) == pytest.approx(np.log(0.3), abs=0.05)


def _posterior(samples, chain_mode):
    """A BinaryPosterior assembled from draws alone (no sampler): for the flag logic."""
    from jaxspec.infer import BinaryPosterior

    names = tuple(samples)
    c, s = next(iter(samples.values())).shape
    modes = [{"chains": np.flatnonzero(chain_mode == k).tolist(), "log_mass": 0.0, "weight": 0.0,
              "medians": {n: float(np.median(samples[n][chain_mode == k])) for n in names}}
             for k in range(int(chain_mode.max()) + 1)]
    for m in modes:
        m["weight"] = 1.0 / len(modes)
    zc, zp = np.zeros((c, s)), np.zeros(4)
    return BinaryPosterior(
        samples=samples, names=names, units=("",) * len(names), fixed={}, log_density=zc,
        diverging=zc.astype(bool), num_steps=np.full((c, s), 7), tree_depth=np.full((c, s), 3),
        accept_prob=zc + 0.8, step_size=np.full(c, 0.3), warmup_divergences=np.zeros(c, int),
        warmup_steps=np.zeros(c, int), chain_mode=np.asarray(chain_mode), chain_start=np.zeros(c, int),
        draw_mode=np.full((c, s), -1), jumped=zc.astype(bool), modes=modes, fit_params={}, optima=[],
        wave=zp, flux=zp, ivar=zp, model_median=zp,
        model_band=np.zeros((4, 4)), predictive_band=np.zeros((2, 4)), model_1=zp, model_2=zp, continuum=zp,
        settings={"max_tree_depth": 8})


def test_every_mode_is_checked_even_a_one_chain_mode():
    """Two well-mixed chains in mode 0 and two one-chain modes. A one-chain mode whose halves disagree
    (a chain still drifting) sets the r_hat flag; before, only mode 0 was judged and a one-chain main
    mode had no r_hat at all."""
    from jaxspec.infer import FLAGS

    rng = np.random.default_rng(5)
    good = rng.normal(0.0, 1.0, (4, 2000))
    good[2] += 40.0
    good[3] -= 40.0
    ok = _posterior({"rv_1": good.copy()}, np.array([0, 0, 1, 2]))
    assert ok.multimodal and ok.diagnostics()["rv_1"]["r_hat_mode"] < 1.01
    assert not ok.flag & FLAGS["r_hat"] and ok.flag & FLAGS["multimodal"]
    drift = good.copy()
    drift[3, 1000:] += 3.0  # chain 3 moves by 3 sd half way
    bad = _posterior({"rv_1": drift}, np.array([0, 0, 1, 2]))
    assert bad.diagnostics()["rv_1"]["r_hat_mode"] > 1.1
    assert bad.flag & FLAGS["r_hat"] and not bad.converged and "NOT CONVERGED" in bad.summary()
    # one chain per mode, the main mode's halves disagree
    solo = _posterior({"rv_1": drift[[3, 2]]}, np.array([0, 1]))
    assert solo.flag & FLAGS["r_hat"]


def test_chains_continue_only_while_the_ess_can_still_be_reached():
    """The continuation rule of sample_binary: blocks are added while r_hat or the ESS fail and a
    block fits under max_samples; past half of max_samples only while the bulk ESS, at its rate so
    far, can reach 400 by max_samples (hopeless posteriors stop early with their flag)."""
    from types import SimpleNamespace

    from jaxspec.infer.posterior import FLAGS
    from jaxspec.infer.sample import _max_samples, _wants_more

    def post(flag, draws, ess):
        return SimpleNamespace(flag=flag, num_draws=draws, min_ess_bulk=ess)

    low, rh = FLAGS["low_ess"], FLAGS["r_hat"]
    assert _max_samples(None, 250) == 3000
    assert not _wants_more(post(FLAGS["divergences"] | FLAGS["multimodal"], 250, 1000.0), 250, 3000)
    assert not _wants_more(post(low, 2750, 390.0), 250, 2900)  # no room for another block
    assert _wants_more(post(low, 1500, 20.0), 250, 3000)  # first half: not judged
    assert _wants_more(post(low, 1750, 250.0), 250, 3000)  # 250 * 3000 / 1750 = 429 >= 400
    assert not _wants_more(post(low, 1750, 200.0), 250, 3000)  # 343 < 400: stops with its flag
    assert not _wants_more(post(low | rh, 2000, 100.0), 250, 3000)
    assert _wants_more(post(rh, 2000, 1200.0), 250, 3000)  # r_hat alone: continue
    assert _wants_more(post(rh, 2000, float("nan")), 250, 3000)


def test_rewarm_rule_and_pooled_metric():
    """A chain whose draws diverge more often than DIVERGENCE_MAX (1 %) triggers a re-warmup; its
    metric is the covariance of all chains' draws, the same for every chain (one mode), or the
    modes' own (two modes: the trace's matrices stay)."""
    from types import SimpleNamespace

    from jaxspec.infer.kernel import pack_modes
    from jaxspec.infer.sample import _diverging_chain, _pooled_inverse_mass, _smallest_step

    div = np.zeros((4, 250), bool)
    div[2, :2] = True  # 0.8 % of one chain's draws, 0.2 % overall
    assert not _diverging_chain(SimpleNamespace(diverging=div))
    div[2, :3] = True  # 1.2 % of chain 2: the mean over chains (0.3 %) would not show it
    assert _diverging_chain(SimpleNamespace(diverging=div))

    rng = np.random.default_rng(0)
    cov = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.2], [0.0, 0.2, 0.09]])
    z = rng.multivariate_normal(np.zeros(3), cov, size=(4, 2000))
    z[1] *= 0.5  # a chain that missed the tails: the pooled estimate sees all chains
    own = np.tile(np.eye(3), (4, 1, 1))
    trace = SimpleNamespace(z=z, inverse_mass_matrix=own)
    one = pack_modes(np.full((2, 3), np.nan), np.full((2, 3, 3), np.nan))[None].repeat(4, 0)
    pooled = _pooled_inverse_mass(trace, one)
    assert pooled.shape == (4, 3, 3) and np.all(pooled == pooled[0])
    np.testing.assert_allclose(pooled[0], np.cov(z.reshape(-1, 3), rowvar=False), rtol=1e-8)
    two = pack_modes(np.zeros((2, 3)), np.tile(np.eye(3), (2, 1, 1)))[None].repeat(4, 0)
    assert _pooled_inverse_mass(trace, two) is own
    from jaxspec.infer.kernel import ChainTrace

    tr = ChainTrace(*([None] * 5), np.array([0.3, 0.1, 0.5, 0.2]), *([None] * 4))
    np.testing.assert_array_equal(_smallest_step(tr).step_size, [0.1] * 4)


def test_calibration_logs_combine_by_seed_and_rerun(tmp_path, calib):
    """bench_calibration --combine: other seeds add spectra, a later log of a seed replaces records by
    index, and a rerun at a larger cap must hold every posterior that stopped on r_hat or ESS."""
    import json

    def rec(i, ok, flag="ok"):
        cover = {k: {"0.68": ok, "0.95": True} for k in calib.PARAMS}
        one = dict.fromkeys(calib.PARAMS, 1.0 if ok else 1.05)
        return {"index": i, "cover": cover, "r_hat": one, "ess_bulk": dict.fromkeys(calib.PARAMS, 500.0),
                "multimodal": False, "divergence_fraction": 0.0, "sample_s": 1.0, "flag": flag}

    def log(name, seed, cap, recs):
        path = tmp_path / name
        settings = {"model": "toy", "n": 2, "seed": seed, "snr": 30.0, "num_warmup": 10, "num_samples": 5,
                    "max_samples": cap}
        path.write_text("\n".join(json.dumps(x) for x in [{"settings": settings}, *recs]) + "\n")
        return path

    a = log("a.jsonl", 0, 30, [rec(0, True), rec(1, False, "r hat")])
    b = log("b.jsonl", 1, 30, [rec(0, True), rec(1, True)])
    out = calib.combine(a, b)
    assert out["n"] == 4 and out["seeds"] == [0, 1]
    assert out["fraction_rhat_and_ess"] == 0.75 and out["coverage"]["teff_2"]["0.68"] == 0.75
    rerun = log("c.jsonl", 0, 60, [rec(1, True)])  # seed 0's failing spectrum, at twice the cap
    out = calib.combine(a, b, rerun)
    assert out["n"] == 4 and out["fraction_rhat_and_ess"] == 1.0 and out["combined"]["replaced"] == ["0:1"]
    with pytest.raises(SystemExit, match=r"lacks spectra \[1\]"):
        calib.combine(a, log("d.jsonl", 0, 60, [rec(0, True)]))
    with pytest.raises(SystemExit, match="at least twice"):
        calib.combine(a, log("e.jsonl", 0, 45, [rec(1, True)]))


def test_calibration_record_stopped_unconverged_reads_bits_then_words(calib):
    """The rerun check of --combine judges a record by its flag bits; older records (message only) by
    the message's words: 'multimodal' or 'divergences' alone do not count."""
    from jaxspec.infer.posterior import FLAGS

    assert calib._stopped_unconverged({"flag": "ok", "flag_bits": FLAGS["low_ess"]})
    assert not calib._stopped_unconverged({"flag": "r hat", "flag_bits": FLAGS["multimodal"]})
    assert calib._stopped_unconverged({"flag": "r hat, multimodal"})
    assert calib._stopped_unconverged({"flag": "low ess"})
    assert not calib._stopped_unconverged({"flag": "divergences, multimodal"})
    assert not calib._stopped_unconverged({"flag": "ok"})


def test_calibration_table_scatter_against_exact_binomials(calib):
    """pass_probability (Monte Carlo of uniform ranks) against the exact multinomial sum: one parameter
    passes when the counts inside the 68 % interval (p 0.68) and inside the 95 % one (p 0.95) both land
    in their bands; independent parameters multiply. 20,000 trials: MC sd <= 0.0035, tolerance 0.015.
    coverage_intervals: Clopper-Pearson, checked against its defining binomial tail (2.5 % each side)."""
    from scipy.stats import binom, multinomial

    def exact(n, n_params):
        p = 0.0
        for a in range(n + 1):
            for b in range(n + 1 - a):
                if 0.60 <= a / n <= 0.76 and 0.90 <= (a + b) / n <= 0.98:
                    p += multinomial.pmf([a, b, n - a - b], n, [0.68, 0.27, 0.05])
        return p ** n_params

    for n in (40, 100):
        assert abs(calib.pass_probability(n, 8) - exact(n, 8)) < 0.015, n
    (lo, hi), = [calib.coverage_intervals({"x": {"0.68": 0.57}}, 100)["x"]["0.68"]]
    assert abs(binom.sf(56, 100, lo) - 0.025) < 1e-6 and abs(binom.cdf(57, 100, hi) - 0.025) < 1e-6
    assert lo < 0.57 < hi < 0.68  # teff_2 of the seed-0 table: a miss at the 5 % level
