"""Chebyshev continuum against numpy.polynomial.chebyshev."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import chebyshev as C

from jaxspec.physics import chebyshev_design, chebyshev_eval, chebyshev_x


def test_design_matches_numpy():
    wave = np.linspace(5000.0, 5300.0, 257)
    x = 2.0 * (wave - 5000.0) / 300.0 - 1.0
    for degree in (0, 1, 4, 9):
        a = chebyshev_design(wave, degree)
        assert a.shape == (257, degree + 1) and a.dtype == np.float64
        np.testing.assert_allclose(a, C.chebvander(x, degree), rtol=0, atol=1e-12)
        aj = chebyshev_design(jnp.asarray(wave), degree)
        np.testing.assert_allclose(np.asarray(aj), C.chebvander(x, degree), rtol=0, atol=2e-5)
    # explicit limits
    a = chebyshev_design(wave, 3, wave_min=4900.0, wave_max=5400.0)
    np.testing.assert_allclose(a, C.chebvander(2 * (wave - 4900.0) / 500.0 - 1, 3), atol=1e-12)


def test_eval_matches_numpy_and_design():
    rng = np.random.default_rng(2)
    coeffs = rng.normal(size=(3, 6))
    wave = np.linspace(4000.0, 4100.0, 101)
    x = np.asarray(chebyshev_x(wave))
    got = np.asarray(chebyshev_eval(coeffs, x))
    assert got.shape == (3, 101)
    ref = np.stack([C.chebval(x, c) for c in coeffs])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(chebyshev_design(wave, 5) @ coeffs.T, ref.T, atol=1e-10)
    # single coefficient set, grads and jit
    np.testing.assert_allclose(
        chebyshev_eval(coeffs[0, :1], x), np.full(101, coeffs[0, 0]), rtol=1e-6
    )
    jac = jax.jacfwd(lambda c: jax.jit(chebyshev_eval)(c, x))(jnp.asarray(coeffs[0]))
    np.testing.assert_allclose(jac, C.chebvander(x, 5), atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="degree"):
        chebyshev_design(np.linspace(1, 2, 5), -1)
    with pytest.raises(ValueError, match="wave_max"):
        chebyshev_design(np.array([5000.0]), 2)
    with pytest.raises(ValueError, match="coeffs"):
        chebyshev_eval(jnp.zeros(0), jnp.zeros(3))
