"""The posterior density: priors from the ParamSpec, the fitter's chi-square, the NumPyro model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxspec.infer.model import log_likelihood, make_prior, numpyro_model


def _data(toy):
    from tests.infer.conftest import TRUTH, simulate_one

    model, wave, bm, opts = toy
    flux, err = simulate_one(bm, TRUTH)
    return flux, 1.0 / err**2


def _design(bm):
    from jaxspec.fit.continuum import continuum_design

    return continuum_design(bm.wave, 2)


def test_default_prior_is_the_spec_box(toy):
    _, _, bm, _ = toy
    prior = make_prior(bm.spec)
    assert prior.spec.free == bm.spec.free
    np.testing.assert_array_equal(prior.spec.bounds(), bm.spec.bounds())
    assert prior.spec["flux_ratio"].upper == 1.0 and not prior.densities
    assert "rv_1 ~ Uniform(-225, 225) km/s" in prior.describe()


def test_prior_overrides(toy):
    import numpyro.distributions as dist

    _, _, bm, _ = toy
    prior = make_prior(bm.spec, {"rv_1": (-50, 50), "teff_1": dist.Normal(5500.0, 100.0),
                                 "feh": ((-0.5, 0.0), dist.Normal(-0.2, 0.1))}, error_scale=True)
    assert (prior.spec["rv_1"].lower, prior.spec["rv_1"].upper) == (-50.0, 50.0)
    assert set(prior.densities) == {"teff_1", "feh"} and prior.spec["feh"].upper == 0.0
    assert prior.spec.free[-1] == "error_scale" and prior.has_error_scale


@pytest.mark.parametrize("priors, match", [
    ({"nope": (0, 1)}, "unknown"),
    ({"flux_ratio": (0.0, 1.5)}, "brighter"),
    ({"rv_1": (10.0, -10.0)}, "low < high"),
    ({"rv_1": (-1e4, 0.0)}, "outside"),
    ({"rv_1": (0.0, np.inf)}, "finite"),
    ({"rv_1": "wide"}, "must be"),
    ({"error_scale": (0.5, 2.0)}, "error_scale=True"),
])
def test_bad_priors_raise(toy, priors, match):
    _, _, bm, _ = toy
    with pytest.raises(ValueError, match=match):
        make_prior(bm.spec, priors)


def test_fixed_parameter_has_no_prior(toy):
    _, _, bm, _ = toy
    with pytest.raises(ValueError, match="fixed"):
        make_prior(bm.with_fixed(vsini_1=0.0).spec, {"vsini_1": (0.0, 1.0)})


def test_profile_likelihood_is_the_fit_objective(toy):
    from jaxspec.fit.binary import chi2_at
    from tests.infer.conftest import TRUTH

    model, wave, bm, opts = toy
    flux, ivar = _data(toy)
    theta = {k: jnp.asarray(v, jnp.float32) for k, v in TRUTH.items()}
    ll = float(log_likelihood(bm, _design(bm), theta, jnp.asarray(flux, jnp.float32),
                              jnp.asarray(ivar, jnp.float32), continuum="profile"))
    params = {k: np.array([v]) for k, v in TRUTH.items()}
    chi2 = chi2_at(params, flux[None], wave, ivar=ivar[None], model=model, **{**opts, "continuum_degree": 2})[0]
    assert ll == pytest.approx(-0.5 * chi2, rel=1e-4)


def test_marginal_adds_the_log_determinant_and_error_scale_enters(toy):
    from tests.infer.conftest import TRUTH

    _, _, bm, _ = toy
    flux, ivar = _data(toy)
    d, w = jnp.asarray(flux, jnp.float32), jnp.asarray(ivar, jnp.float32)
    design = _design(bm)
    theta = {k: jnp.asarray(v, jnp.float32) for k, v in TRUTH.items()}
    prof = float(log_likelihood(bm, design, theta, d, w, continuum="profile"))
    marg = float(log_likelihood(bm, design, theta, d, w))
    m = np.asarray(bm.flux(theta), dtype=np.float64)
    a = m[:, None] * design
    logdet = np.linalg.slogdet(a.T @ (ivar[:, None] * a))[1]
    assert marg - prof == pytest.approx(-0.5 * logdet, abs=0.05)
    s1 = float(log_likelihood(bm, design, {**theta, "error_scale": jnp.float32(1.0)}, d, w))
    assert s1 == pytest.approx(marg, rel=1e-6)
    s2 = float(log_likelihood(bm, design, {**theta, "error_scale": jnp.float32(2.0)}, d, w))
    n, k = flux.size, design.shape[1]
    expect = (prof + 0.5 * (-2 * prof) * (1 - 0.25)) - n * np.log(2.0) - 0.5 * logdet + k * np.log(2.0)
    assert s2 == pytest.approx(expect, rel=1e-4)


def test_log_density_equals_the_numpyro_model(toy):
    import numpyro.distributions as dist
    from numpyro.infer.util import potential_energy

    _, _, bm, _ = toy
    flux, ivar = _data(toy)
    d, w = jnp.asarray(flux, jnp.float32), jnp.asarray(ivar, jnp.float32)
    design = jnp.asarray(_design(bm), jnp.float32)
    prior = make_prior(bm.spec, {"teff_1": dist.Normal(5500.0, 300.0), "rv_1": (-100.0, 100.0)})
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(2):
        z = jnp.asarray(rng.normal(0, 0.5, len(prior.spec.free)), jnp.float32)
        ours.append(float(prior.log_density(z, lambda th: log_likelihood(bm, design, th, d, w))))
        # The same physical point in NumPyro's unconstrained space (logistic map of each Uniform site);
        # compare log densities in physical units: remove each map's log-Jacobian.
        lo, hi = prior.spec.bounds().T
        u = (prior.physical(np.asarray(z)) - lo) / (hi - lo)
        zl = np.log(u) - np.log1p(-u)
        params = {n: jnp.float32(zl[i]) for i, n in enumerate(prior.spec.free)}
        logistic_jac = np.sum(np.log(hi - lo) + np.log(u) + np.log1p(-u))
        ours[-1] -= float(prior.log_jacobian(z))
        pe = float(potential_energy(numpyro_model, (bm, design, prior, d, w), {}, params))
        theirs.append(-pe - logistic_jac)
    # equal up to a constant (NumPyro's uniform densities carry -log(width))
    assert ours[0] - ours[1] == pytest.approx(theirs[0] - theirs[1], rel=1e-3, abs=1e-2)


def test_gradient_is_finite_at_the_bounds(toy):
    _, _, bm, _ = toy
    flux, ivar = _data(toy)
    d, w = jnp.asarray(flux, jnp.float32), jnp.asarray(ivar, jnp.float32)
    design = jnp.asarray(_design(bm), jnp.float32)
    prior = make_prior(bm.spec)
    free = prior.spec.free
    z = np.zeros(len(free), np.float32)
    for name, v in (("vsini_1", -14.0), ("vsini_2", -14.0), ("flux_ratio", 14.0), ("logg_1", 14.0)):
        z[free.index(name)] = v
    def density(z):
        return prior.log_density(z, lambda th: log_likelihood(bm, design, th, d, w))

    g = jax.grad(density)(jnp.asarray(z))
    assert np.all(np.isfinite(np.asarray(g)))


def test_sampler_settings_are_checked():
    from jaxspec.infer.sample import _check_settings

    s = _check_settings(300, 500, 4, "marginal", 0.8, 8, 5)
    assert (s.max_tree_depth, s.warmup_tree_depth) == (8, 5)
    with pytest.raises(ValueError, match="warmup_tree_depth"):
        _check_settings(300, 500, 4, "marginal", 0.8, 8, 0)
    with pytest.raises(ValueError, match="max_tree_depth"):
        _check_settings(300, 500, 4, "marginal", 0.8, 16, 5)


def test_initial_mass_matrix_from_hessian_is_clipped():
    """Precision eigenvalues are clipped to [1, 1e12]: variances at most 1 in z, the prior's (a
    flat direction, e.g. vsini pressed against 0), and the Hessian's own shape elsewhere."""
    from jaxspec.infer.init import _clipped_inverse

    p = np.diag([1e4, 2.0, 1e-6])
    p[0, 1] = p[1, 0] = 50.0
    cov = _clipped_inverse(p)
    np.testing.assert_allclose(cov[:2, :2], np.linalg.inv(p[:2, :2]), rtol=1e-9)
    assert cov[2, 2] == pytest.approx(1.0)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_normal_cdf_map_round_trips_and_its_jacobian_is_the_derivative(toy):
    """theta = lo + (hi - lo) Phi(z): jax and numpy forms agree, invert, and log_jacobian is
    log d theta / d z (checked by autodiff of the map itself); a uniform prior is N(0, 1) in z."""
    _, _, bm, _ = toy
    prior = make_prior(bm.spec, {"rv_1": (-100.0, 100.0)})
    free = prior.spec.free
    z = np.random.default_rng(3).normal(0, 1.5, len(free))
    th = prior.from_unconstrained(jnp.asarray(z))
    phys = prior.physical(z)
    lo, hi = prior.spec.bounds().T
    np.testing.assert_allclose((np.array([float(th[n]) for n in free]) - phys) / (hi - lo), 0.0, atol=1e-6)
    assert np.all((phys > lo) & (phys < hi))
    np.testing.assert_allclose(prior.to_unconstrained(dict(zip(free, phys, strict=True)), margin=1e-12), z,
                               atol=1e-6)
    d = np.array([float(jax.grad(lambda zz, i=i, n=n: prior.from_unconstrained(zz)[n])(jnp.asarray(z))[i])
                  for i, n in enumerate(free)])
    np.testing.assert_allclose(d, prior.dtheta_dz(z), rtol=1e-5)
    assert float(prior.log_jacobian(jnp.asarray(z))) == pytest.approx(np.sum(np.log(d)), rel=1e-6)
    # the log-Jacobian of a uniform prior is the standard normal log density (+ log width)
    expect = np.sum(np.log(hi - lo)) + np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi))
    assert float(prior.log_jacobian(jnp.asarray(z))) == pytest.approx(expect, rel=1e-6)
