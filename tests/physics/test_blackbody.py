"""Planck function against astropy and a float64 numpy formula; float32 safety."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxspec.physics import planck

H, C, K = 6.62607015e-27, 2.99792458e10, 1.380649e-16  # CODATA 2018, cgs


def _planck_numpy(wave_a, teff):
    lam = wave_a * 1e-8
    return 2 * H * C**2 / lam**5 / np.expm1(H * C / (lam * K * teff)) * 1e-8


def test_against_numpy_formula():
    wave = np.geomspace(1000.0, 50000.0, 200)
    for teff in (3000.0, 5772.0, 12000.0, 40000.0):
        np.testing.assert_allclose(planck(wave, teff), _planck_numpy(wave, teff), rtol=2e-5)


def test_against_astropy():
    units = pytest.importorskip("astropy.units")
    models = pytest.importorskip("astropy.modeling.models")
    wave = np.array([3000.0, 5500.0, 15000.0])
    bb = models.BlackBody(
        temperature=5772.0 * units.K,
        scale=1.0 * units.erg / (units.s * units.cm**2 * units.AA * units.sr),
    )
    ref = bb(wave * units.AA).to_value(units.erg / (units.s * units.cm**2 * units.AA * units.sr))
    np.testing.assert_allclose(planck(wave, 5772.0), ref, rtol=2e-5)


def test_float32_safety_and_broadcast():
    # hc / (lambda k T) = 100 at 1000 A and 1438.8 K: exp(100) overflows float32
    out = planck(jnp.asarray([1000.0], jnp.float32), jnp.asarray(1438.77, jnp.float32))
    assert jnp.all(jnp.isfinite(out)) and float(out[0]) > 0
    np.testing.assert_allclose(out, _planck_numpy(np.array([1000.0]), 1438.77), rtol=1e-4)
    # Rayleigh-Jeans limit: 2 c k T / lambda^4
    lam = 1e8  # 1 cm
    rj = 2 * C * K * 1e4 / 1.0**4 * 1e-8
    assert float(planck(lam, 1e4)) == pytest.approx(rj, rel=1e-3)
    teff = jnp.asarray([4000.0, 6000.0])
    wave = jnp.linspace(4000.0, 7000.0, 5)
    assert planck(wave[None, :], teff[:, None]).shape == (2, 5)
    g = jax.grad(lambda t: planck(5000.0, t))(5000.0)
    assert jnp.isfinite(g) and g > 0
