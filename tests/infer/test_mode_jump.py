"""The mode-jump move keeps the target invariant: on an analytic two-component Gaussian mixture
(weights 0.7 / 0.3, different covariances, 12 standard deviations apart, so NUTS alone never
crosses) chains all started in one component end up sampling both in the right proportion.

Different covariances make the Jacobian factor |L_j| / |L_k| matter: dropping it would shift the
weight of the second component from 0.3 to 0.3 * 2.5 / (0.7 + 0.3 * 2.5) = 0.52 (its covariance
has 1/2.5 of the first's volume; measured: 0.51-0.52). Maps that are off (shifted centres,
inflated covariances) must still give the right weights, only fewer accepted jumps.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxspec.infer.kernel import jump_radius, make_runner, mode_region, pack_modes, unpack_modes

MU = np.array([[0.0, 0.0], [8.0, 8.0]])
COV = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.25, -0.1], [-0.1, 0.3]]])
WEIGHT = np.array([0.7, 0.3])


def log_density(z, flux, ivar):
    del flux, ivar
    out = []
    for mu, cov, w in zip(MU, COV, WEIGHT, strict=True):
        r = z - mu
        prec = jnp.asarray(np.linalg.inv(cov), z.dtype)
        out.append(np.log(w) - 0.5 * r @ prec @ r - 0.5 * np.log(np.linalg.det(2 * np.pi * cov)))
    return jax.nn.logsumexp(jnp.stack(out))


def _run(modes, mode_jumps=True, num_chains=4, seed=0):
    run = jax.jit(make_runner(log_density, num_warmup=200, num_samples=1500, mode_jumps=mode_jumps))
    z0 = np.tile(MU[0], (num_chains, 1)) + 0.1
    inv = np.tile(COV[0], (num_chains, 1, 1))
    tr = run(jax.random.split(jax.random.key(seed), num_chains), jnp.asarray(z0, jnp.float32),
             jnp.asarray(inv, jnp.float32), jnp.full(num_chains, 0.5, jnp.float32),
             jnp.asarray(np.tile(modes, (num_chains, 1, 1, 1)), jnp.float32), jnp.zeros(3), jnp.ones(3))
    z = np.asarray(tr.z)
    in_second = np.linalg.norm(z - MU[1], axis=-1) < np.linalg.norm(z - MU[0], axis=-1)
    return in_second, np.asarray(tr.jumped)


def _modes(centres, covs):
    pad = np.full((2, 2), np.nan)
    return pack_modes(np.concatenate([centres, pad]), np.concatenate([np.linalg.cholesky(covs),
                                                                      np.full((2, 2, 2), np.nan)]))


@pytest.mark.parametrize("exact", [True, False])
def test_mode_jumps_sample_the_mixture_weights(exact):
    if exact:
        modes = _modes(MU, COV)
    else:  # maps off by 0.3 sd in the centres and 1.4x in the widths
        modes = _modes(MU + 0.3, COV * 1.4**2)
    in_second, jumped = _run(modes)
    frac = in_second.mean()
    # 4 x 1,500 draws; with jumps accepted every few draws the indicator's ESS is > 500, so the
    # binomial sd is < 0.02: 0.05 is 2.5 sd and far from the 0.55 of a missing Jacobian.
    assert abs(frac - 0.3) < 0.05, frac
    assert np.all(in_second.mean(axis=1) > 0.15) and np.all(in_second.mean(axis=1) < 0.45), in_second.mean(1)
    assert jumped.sum() > 200, jumped.sum()


def test_without_jumps_chains_stay_in_their_mode():
    in_second, jumped = _run(_modes(MU, COV), mode_jumps=False)
    assert not jumped.any() and not in_second.any()


def test_unused_slots_and_regions():
    modes = _modes(MU, COV)
    centres, chols, usable = unpack_modes(jnp.asarray(modes))
    assert usable.tolist() == [True, True, False, False]
    assert np.all(np.isfinite(np.asarray(chols)))
    r = jump_radius(2)
    assert abs(r - np.sqrt(9.2103)) < 1e-3  # 99 % of a 2-d Gaussian
    k, inside = mode_region(jnp.asarray([7.9, 8.2]), centres, chols, usable, r)
    assert int(k) == 1 and bool(inside)
    k, inside = mode_region(jnp.asarray([4.0, 4.0]), centres, chols, usable, r)
    assert not bool(inside)
    # a single usable mode: no jumps at all
    one = _modes(MU, COV)
    one[1] = np.nan
    in_second, jumped = _run(one)
    assert not jumped.any() and not in_second.any()


def test_refit_modes_uses_each_modes_draws():
    """The mode-map stage re-estimates each mode from the draws nearest to it; with one usable mode
    (nothing to jump between, as for most spectra of a batch) the modes come back unchanged."""
    from jaxspec.infer.sample import _refit_modes

    rng = np.random.default_rng(1)
    draws = np.concatenate([rng.multivariate_normal(MU[k], COV[k], 3000) for k in (0, 1)]).reshape(4, 1500, 2)
    # deliberately off starting shapes: twice too wide, centres shifted by half a sigma
    start = np.broadcast_to(_modes(MU + 0.4, 4.0 * COV), (4, 4, 3, 2))
    out = _refit_modes(draws, start)
    assert out.shape == start.shape
    centres, chols = out[0][:, 0], out[0][:, 1:]  # the pack_modes layout
    np.testing.assert_allclose(centres[:2], MU, atol=0.06)  # 3000 draws: sd of the mean < 0.02
    cov = np.asarray(chols[:2] @ np.swapaxes(chols[:2], -1, -2))
    np.testing.assert_allclose(cov, COV, atol=0.08)  # sd of a sample variance near 1: 0.026
    single = np.array(start)
    single[:, 1:] = np.nan
    np.testing.assert_array_equal(_refit_modes(draws, single), single)


def _run_metric(modes, num_chains=4, seed=0, restep=100, n=1500):
    """Chains of the mode-metric runner (each mode its own metric, label jumps), started in mode 0."""
    run = jax.jit(make_runner(log_density, num_warmup=restep, num_samples=n, adapt_mass_matrix=False,
                              mode_jumps=True, warmup_jumps=True, mode_metric=True))
    z0 = np.tile(MU[0], (num_chains, 1)) + 0.1
    inv = np.tile(COV[0], (num_chains, 1, 1))
    tr = run(jax.random.split(jax.random.key(seed), num_chains), jnp.asarray(z0, jnp.float32),
             jnp.asarray(inv, jnp.float32), jnp.full(num_chains, 0.5, jnp.float32),
             jnp.asarray(np.tile(modes, (num_chains, 1, 1, 1)), jnp.float32), jnp.zeros(3), jnp.ones(3))
    return tr


@pytest.mark.parametrize("exact", [True, False])
def test_mode_metric_samples_the_mixture(exact):
    """NUTS in each mode's own standardised coordinates with label jumps: right weights, and the
    draws of each component have its mean and covariance (each mode sampled in its own metric).
    Without the Jacobian |L_j| / |L_k| the second weight would be 0.52."""
    modes = _modes(MU, COV) if exact else _modes(MU + 0.3, COV * 1.4**2)
    tr = _run_metric(modes)
    z = np.asarray(tr.z)
    in_second = np.linalg.norm(z - MU[1], axis=-1) < np.linalg.norm(z - MU[0], axis=-1)
    assert abs(in_second.mean() - 0.3) < 0.05, in_second.mean()
    assert np.all(in_second.mean(axis=1) > 0.15) and np.all(in_second.mean(axis=1) < 0.45)
    for k, sel in enumerate((~in_second, in_second)):
        x = z[sel]
        np.testing.assert_allclose(x.mean(axis=0), MU[k], atol=0.1)  # >= 1,800 draws, sd <= 0.03
        np.testing.assert_allclose(np.cov(x, rowvar=False), COV[k], atol=0.12)
    assert not np.asarray(tr.diverging).any()
    assert np.asarray(tr.jumped).sum() > 500


def test_mode_metric_with_one_mode_is_the_given_metric():
    """With one usable mode the metric is the given inverse mass matrix: the chains sample the
    first component (a Gaussian) correctly and never jump."""
    one = _modes(MU, COV)
    one[1] = np.nan
    tr = _run_metric(one)
    z = np.asarray(tr.z).reshape(-1, 2)
    assert not np.asarray(tr.jumped).any()
    np.testing.assert_allclose(z.mean(axis=0), MU[0], atol=0.1)
    np.testing.assert_allclose(np.cov(z, rowvar=False), COV[0], atol=0.12)
    given = np.tile(COV[0], (4, 1, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(tr.inverse_mass_matrix), given)


def test_mode_metric_needs_fixed_mass_matrix():
    with pytest.raises(ValueError, match="mode_metric"):
        make_runner(log_density, num_warmup=10, num_samples=10, mode_metric=True)


def _gaussian(z, flux, ivar):
    del flux, ivar
    prec = jnp.asarray(np.linalg.inv(COV10), z.dtype)
    return -0.5 * z @ prec @ z


COV10 = np.diag(np.geomspace(0.01, 100.0, 10))


def test_single_window_adapts_the_step_size_from_any_start():
    """A re-warmup (``single_window``) adapts the step size by one dual-averaging run: eight chains
    on a 10-d Gaussian with the exact metric, started with step sizes 50x too large and 50x too
    small, end with step sizes within 30 % of each other and accept near the 0.8 target (measured:
    a spread of 1.14x). NumPyro's windowed schedule sets them from its last window, 12 of these 120
    iterations: a spread of 1.41x in the same run, which this test would fail."""
    n = 8
    run = jax.jit(make_runner(_gaussian, num_warmup=120, num_samples=300, mode_jumps=False,
                              adapt_mass_matrix=False, single_window=True))
    step0 = np.where(np.arange(n) % 2, 50.0, 0.02).astype(np.float32)
    inv = np.tile(COV10, (n, 1, 1)).astype(np.float32)
    tr = run(jax.random.split(jax.random.key(1), n), jnp.zeros((n, 10)), jnp.asarray(inv), jnp.asarray(step0),
             jnp.full((n, 1, 11, 10), jnp.nan), jnp.zeros(3), jnp.ones(3))
    step = np.asarray(tr.step_size)
    assert step.max() / step.min() < 1.3, step
    assert 0.7 < float(np.mean(tr.accept_prob)) < 0.9
    assert not np.asarray(tr.diverging).any()
    np.testing.assert_allclose(np.asarray(tr.inverse_mass_matrix), inv, rtol=1e-6)  # the given metric
    with pytest.raises(ValueError, match="single_window"):
        make_runner(_gaussian, num_warmup=10, num_samples=10, single_window=True)
