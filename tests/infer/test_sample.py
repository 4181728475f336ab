"""sample_binary on a toy binary: draws, summary, flags, ArviZ, files, plots, bad input."""

import numpy as np
import pytest

from tests.infer.conftest import TRUTH

# The toy posterior fixture compiles a fit and a sampler (about 60-85 s on a 2-core CPU): CI runs these
# in its second job.
pytestmark = pytest.mark.heavy


def test_draws_are_finite_and_recover_the_truth(toy_post):
    post, _, _ = toy_post
    assert post.names == ("teff_1", "logg_1", "teff_2", "logg_2", "feh", "rv_1", "rv_2", "vsini_1", "vsini_2",
                          "flux_ratio")
    for n in post.names:
        x = post.samples[n]
        assert x.shape == (4, 150) and np.all(np.isfinite(x))
    for n in ("rv_1", "rv_2", "flux_ratio", "teff_1", "feh"):
        x = post.samples[n]
        assert abs(np.median(x) - TRUTH[n]) < 4.0 * x.std() + 1e-9, n
    lo, hi = post.interval("rv_1", 0.95)
    assert lo < TRUTH["rv_1"] < hi
    assert np.all(post.step_size > 0) and post.tree_depth.max() <= post.settings["max_tree_depth"]
    assert post.model_band.shape == (4, post.wave.size) and np.all(np.isfinite(post.model_band))
    # the posterior median model fits: residuals at the noise level
    chi2 = np.sum(post.ivar * (post.flux - post.model_median) ** 2) / post.flux.size
    assert chi2 < 1.3


def test_summary_table_and_flags(toy_post):
    post, _, _ = toy_post
    text = post.summary()
    for word in ("mean", "sd", "2.5%", "97.5%", "ess_bulk", "ess_tail", "r_hat", "divergences", "step size",
                 "tree depth", "flux_ratio is defined at"):
        assert word in text
    diag = post.diagnostics()
    assert set(diag) == set(post.names)
    assert all(d["r_hat"] < 1.1 for d in diag.values())
    # 600 draws cannot give ESS >= 400 for every parameter and tail: the flag says so
    assert isinstance(post.flag, int) and ("NOT CONVERGED" in text) == (not post.converged)


def test_disagreeing_chains_are_flagged_not_converged(toy_post):
    """Chains that disagree within one mode (here: chain 0 moved by 3 sd) are not converged: the flag and
    the summary say so. (No new sampler: compiling one costs half a minute on a 2-core CPU.)"""
    import dataclasses

    from jaxspec.infer import FLAGS

    post, _, _ = toy_post
    moved = {n: v.copy() for n, v in post.samples.items()}
    for v in moved.values():
        v[0] += 3.0 * v.std()
    bad = dataclasses.replace(post, samples=moved, diverging=np.ones_like(post.diverging))
    assert not bad.converged and bad.flag & FLAGS["r_hat"] and bad.flag & FLAGS["divergences"]
    assert "NOT CONVERGED" in bad.summary() and "r hat" in bad.flag_message
    assert all(np.all(np.isfinite(v)) for v in post.samples.values())


def test_to_arviz_and_files_round_trip(toy_post, tmp_path):
    az = pytest.importorskip("arviz")
    from jaxspec.infer import BinaryPosterior

    post, _, _ = toy_post
    idata = post.to_arviz()
    assert idata.posterior["rv_1"].shape == (4, 150)
    assert "diverging" in idata.sample_stats and "tree_depth" in idata.sample_stats
    assert post.diagnostics()["rv_1"]["ess_bulk"] == pytest.approx(float(az.ess(idata, var_names=["rv_1"])
                                                                         ["rv_1"]), rel=0.05)
    for suffix in (".h5", ".nc"):
        path = tmp_path / f"post{suffix}"
        post.save(path)
        back = BinaryPosterior.load(path)
        for n in post.names:
            np.testing.assert_array_equal(back.samples[n], post.samples[n])
        np.testing.assert_array_equal(back.model_band, post.model_band)
        assert back.modes == post.modes and back.settings == post.settings
        assert back.summary() == post.summary()
    with pytest.raises(ValueError, match="unknown file type"):
        post.save(tmp_path / "post.txt")


def test_plots(toy_post, tmp_path):
    pytest.importorskip("corner")
    post, _, _ = toy_post
    post.plot_corner(tmp_path / "corner.png", truths=TRUTH, names=("teff_1", "rv_1", "rv_2", "flux_ratio"))
    post.plot_fit(tmp_path / "fit.png")
    assert (tmp_path / "corner.png").stat().st_size > 10_000
    assert (tmp_path / "fit.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="unknown parameters"):
        post.plot_corner(names=("nope",))


def test_bad_input_gives_clear_errors(toy, toy_post):
    from jaxspec.infer import sample_binary, sample_binary_batch

    model, wave, bm, opts = toy
    _, flux, err = toy_post
    with pytest.raises(ValueError, match="one spectrum"):
        sample_binary(np.stack([flux, flux]), wave, np.stack([err, err]), model=model, **opts)
    with pytest.raises(ValueError, match="err has shape"):
        sample_binary(flux, wave, err[:-1], model=model, **opts)
    with pytest.raises(ValueError, match="flux has shape"):
        sample_binary(flux[:-3], wave, model=model, **opts)
    with pytest.raises(ValueError, match="num_samples"):
        sample_binary(flux, wave, err, model=model, num_samples=2, **opts)
    with pytest.raises(ValueError, match="continuum"):
        sample_binary(flux, wave, err, model=model, continuum="free", **opts)
    with pytest.raises(ValueError, match="chain_method"):
        sample_binary(flux, wave, err, model=model, chain_method="magic", **opts)
    with pytest.raises(ValueError, match="devices"):
        sample_binary(flux, wave, err, model=model, chain_method="parallel", num_chains=64, **opts)
    with pytest.raises(ValueError, match=r"\(N, P\)"):
        sample_binary_batch(flux, wave, err, model=model, **opts)
    with pytest.raises(ValueError, match="max_samples"):
        sample_binary(flux, wave, err, model=model, num_samples=100, max_samples=50, **opts)


def test_chains_continue_until_the_diagnostics_hold(toy, toy_post, calib):
    """Short chains (150 warmup + 100 draws) cannot reach bulk ESS 400 for every parameter: they continue
    from where they stopped, 100 draws at a time, up to max_samples, with the adapted step size and mass
    matrix; the batch path does the same for the spectra that need it."""
    from jaxspec.infer import FLAGS, sample_binary, sample_binary_batch

    model, wave, bm, opts = toy
    _, flux, err = toy_post
    kw = dict(model=model, priors=calib.priors(), num_warmup=150, num_samples=100, seed=3, **opts)
    once = sample_binary(flux, wave, err, max_samples=100, **kw)
    assert once.num_draws == 100 and once.settings["extensions"] == 0
    assert once.flag & FLAGS["low_ess"]  # so the default would continue
    more = sample_binary(flux, wave, err, max_samples=300, **kw)
    n_ext = more.settings["extensions"]
    assert more.num_draws == 100 * (1 + n_ext) and 1 <= n_ext <= 2
    # it stops early only when the diagnostics hold or, past half of max_samples, when the ESS cannot
    # reach 400 by max_samples at its rate so far
    assert n_ext == 2 or not more.flag & (FLAGS["r_hat"] | FLAGS["low_ess"]) or \
        more.min_ess_bulk * 300 / 200 < 400
    # the first block is the same run; the continuation starts where it stopped (no new warmup)
    for n in more.names:
        np.testing.assert_allclose(more.samples[n][:, :100], once.samples[n], rtol=1e-6)
        assert np.all(np.isfinite(more.samples[n]))
    np.testing.assert_array_equal(more.step_size, once.step_size)
    assert min(more.diagnostics()[n]["ess_bulk"] for n in more.names) > \
        min(once.diagnostics()[n]["ess_bulk"] for n in once.names)
    jump = np.abs(more.samples["rv_1"][:, 100] - more.samples["rv_1"][:, 99])
    assert np.all(jump < 4.0 * more.samples["rv_1"].std())
    for method in ("threads", "vectorized"):  # the CPU's way and the accelerators' (vmap over spectra)
        batch = sample_binary_batch(np.stack([flux, flux]), wave, np.stack([err, err]), max_samples=200,
                                    chunk_size=2, chain_method=method, **kw)
        assert all(p.num_draws == 200 and p.settings["extensions"] == 1 for p in batch)
        assert all(p.settings["chain_method"] == method for p in batch)
        assert all(np.all(np.isfinite(v)) for p in batch for v in p.samples.values())
        # the two copies of one spectrum have chains of their own (other keys), not the same draws
        assert not np.array_equal(batch[0].samples["rv_1"], batch[1].samples["rv_1"])


def test_batch_threads_share_one_pool_without_changing_the_draws(toy, toy_post, calib, monkeypatch):
    """With threads, the chains of all spectra in progress share one pool of a thread per core; a
    chain's draws depend only on its keys, so the draws (continuations included) are those of a
    one-core run, and each posterior reports its chains' core-seconds."""
    from jaxspec.infer import sample_binary_batch

    model, wave, bm, opts = toy
    _, flux, err = toy_post
    kw = dict(model=model, priors=calib.priors(), num_warmup=150, num_samples=100, seed=5, max_samples=200,
              chain_method="threads", **opts)
    stack, errs = np.stack([flux, flux, flux]), np.stack([err, err, err])
    pooled = sample_binary_batch(stack, wave, errs, **kw)
    monkeypatch.setattr("jaxspec._machine.usable_cores", lambda: 1)
    alone = sample_binary_batch(stack, wave, errs, **kw)
    for a, b in zip(pooled, alone, strict=True):
        assert a.num_draws == b.num_draws and a.settings["extensions"] == b.settings["extensions"]
        for n in a.names:
            np.testing.assert_array_equal(a.samples[n], b.samples[n])
        assert 0.0 < a.timing["chains_s"] and 0.0 < b.timing["chains_s"] <= 3 * b.timing["sample_s"] + 1e-6


def test_diverging_chains_are_warmed_up_again(toy, toy_post, calib, monkeypatch):
    """Chains that must continue while one of them diverges (here the rule is forced to say so) are
    warmed up again, once: the draws so far are discarded (they and the re-adaptation count as
    warmup), every chain gets one metric and the step size re-adapts; then they continue as usual.
    The same in the batch path (vmap over spectra)."""
    from jaxspec.infer import sample as s
    from jaxspec.infer import sample_binary, sample_binary_batch

    model, wave, bm, opts = toy
    _, flux, err = toy_post
    kw = dict(model=model, priors=calib.priors(), num_warmup=150, num_samples=100, seed=3, **opts)
    once = sample_binary(flux, wave, err, max_samples=100, **kw)
    monkeypatch.setattr(s, "_diverging_chain", lambda trace: True)
    post = sample_binary(flux, wave, err, max_samples=200, **kw)
    assert post.settings["rewarms"] == 1 and post.settings["extensions"] == 1 and post.num_draws == 200
    assert once.settings["rewarms"] == 0 and "warmed up again" not in once.summary()
    assert "warmed up again" in post.summary()
    assert not np.allclose(post.samples["rv_1"][:, :100], once.samples["rv_1"])  # the first block is gone
    restep = post.warmup_steps - once.warmup_steps - once.num_steps.sum(axis=1)
    assert np.all(restep >= 50)  # the re-warmup's max(50, num_warmup // 4) iterations, >= 1 step each
    assert np.all(post.warmup_divergences >= once.warmup_divergences + once.diverging.sum(axis=1))
    assert all(np.all(np.isfinite(v)) for v in post.samples.values())
    batch = sample_binary_batch(np.stack([flux, flux]), wave, np.stack([err, err]), max_samples=200,
                                chunk_size=2, chain_method="vectorized", **kw)
    for p in batch:
        assert p.settings["rewarms"] == 1 and p.settings["extensions"] == 1 and p.num_draws == 200
        assert all(np.all(np.isfinite(v)) for v in p.samples.values())


def test_chain_method_choice(monkeypatch):
    import jax

    from jaxspec.infer import sample as s

    assert s._choose_method("vectorized", 4) == "vectorized"
    monkeypatch.setattr(jax, "local_device_count", lambda: 4)
    assert s._choose_method("auto", 4) == "parallel"
    monkeypatch.setattr(jax, "local_device_count", lambda: 1)
    monkeypatch.setattr("jaxspec._machine.usable_cores", lambda: 2)
    assert s._choose_method("auto", 4) == ("threads" if jax.default_backend() == "cpu" else "vectorized")
    monkeypatch.setattr("jaxspec._machine.usable_cores", lambda: 1)
    assert s._choose_method("auto", 4) == "vectorized"
