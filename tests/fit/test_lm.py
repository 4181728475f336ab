"""Levenberg-Marquardt: scipy agreement, known-truth recovery, vmap, NaN safety."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import least_squares

import jaxspec
from jaxspec.fit import levenberg_marquardt
from jaxspec.models import BinaryModel


def _rosenbrock(z):
    return jnp.array([10.0 * (z[1] - z[0] ** 2), 1.0 - z[0]])


def test_rosenbrock_matches_scipy():
    res = jax.jit(lambda z0: levenberg_marquardt(_rosenbrock, z0, max_iter=200))(jnp.array([-1.2, 1.0]))
    ref = least_squares(lambda z: np.asarray(_rosenbrock(jnp.asarray(z))), [-1.2, 1.0], method="lm")
    np.testing.assert_allclose(res.z, ref.x, atol=1e-4)
    assert bool(res.converged) and bool(res.finite)
    assert float(res.cost) < 1e-8


def test_vmap_over_starts_and_nan_steps_rejected():
    def resid(z):
        # NaN for z[0] < -2: steps into that region must be rejected, not propagated.
        return jnp.where(z[0] < -2.0, jnp.nan, 1.0) * jnp.array([z[0] - 1.0, 2.0 * (z[1] + 0.5)])

    starts = jnp.array([[0.0, 0.0], [3.0, -4.0], [-1.5, 2.0]])
    res = jax.vmap(lambda z0: levenberg_marquardt(resid, z0))(starts)
    np.testing.assert_allclose(res.z, np.tile([1.0, -0.5], (3, 1)), atol=1e-5)
    assert np.all(np.asarray(res.finite))
    bad = levenberg_marquardt(resid, jnp.array([-3.0, 0.0]))
    assert not bool(bad.finite)


def test_recovers_a_simulated_binary():
    """Noise-free SB2 from the default emulator: LM from a nearby start recovers the truth."""
    em = jaxspec.default_model()
    wave = np.arange(5000.0, 5300.0, 0.1)
    bm = BinaryModel(em, wave, resolution=7500.0)
    spec = bm.spec.with_fixed(vsini_2=0.0)
    truth = {"teff_1": 5800.0, "logg_1": 4.4, "teff_2": 4700.0, "logg_2": 4.6, "feh": -0.2,
             "rv_1": -30.0, "rv_2": 45.0, "vsini_1": 5.0, "vsini_2": 0.0, "flux_ratio": 0.4}
    data = bm.flux(truth)
    sigma = 0.01

    def resid(z):
        return (bm.flux(spec.from_unconstrained(z)) - data) / sigma

    start = {**truth, "teff_1": 5600.0, "teff_2": 4900.0, "logg_1": 4.2, "feh": 0.0,
             "rv_1": -28.0, "rv_2": 43.0, "flux_ratio": 0.3, "vsini_1": 8.0}
    res = jax.jit(lambda z0: levenberg_marquardt(resid, z0, max_iter=60))(spec.to_unconstrained(start))
    got = spec.from_unconstrained(res.z)
    assert bool(res.finite)
    assert float(res.cost) < 1e-2 * 0.5 * data.size  # chi2 per pixel << 1 on noise-free data
    assert float(got["teff_1"]) == pytest.approx(5800.0, abs=30.0)
    assert float(got["teff_2"]) == pytest.approx(4700.0, abs=30.0)
    assert float(got["rv_1"]) == pytest.approx(-30.0, abs=0.2)
    assert float(got["rv_2"]) == pytest.approx(45.0, abs=0.2)
    assert float(got["flux_ratio"]) == pytest.approx(0.4, abs=0.01)


def test_covariance_keeps_weakly_constrained_directions():
    """The Gauss-Newton covariance in float32 when the z-space diagonal spans 10 decades
    (a well-measured rv against a vsini near its bound): equal to the float64 inverse. A plain
    float32 pinv of the unscaled matrix truncates the weak direction to zero variance."""
    from jaxspec.fit.binary import _cov
    from jaxspec.models.params import Param, ParamSpec

    spec = ParamSpec((Param("a", "", -1.0, 1.0), Param("b", "", 0.0, 300.0), Param("c", "", 0.0, 1.0)))
    rng = np.random.default_rng(0)
    j = rng.normal(size=(3, 50)) * np.array([[3e4], [0.3], [30.0]])
    j[2] += 0.5 * j[1] / 0.3 * 30.0 * 0.2  # correlate b and c
    jtj64 = j @ j.T
    z = np.array([0.1, -4.0, 0.3])
    got = np.asarray(_cov(spec, jnp.asarray(z, jnp.float32), jnp.asarray(jtj64, jnp.float32)))
    lo, hi = spec.bounds().T
    s = 1.0 / (1.0 + np.exp(-z))
    g = (hi - lo) * s * (1.0 - s)
    want = np.linalg.inv(jtj64) * np.outer(g, g)
    # float32 rounding of a matrix with condition number ~1e3 after scaling: 1e-3 relative
    np.testing.assert_allclose(np.sqrt(np.diag(got)), np.sqrt(np.diag(want)), rtol=1e-3)
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want))).max()
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-3 * scale)
