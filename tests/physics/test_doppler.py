"""Doppler shift: analytic wavelengths, exact centroid shifts on a log-lambda grid, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxspec.physics import (
    doppler_factor,
    doppler_shift,
    doppler_shift_wave,
    log_lambda_grid,
    shift_pixels,
)
from jaxspec.physics.constants import C_KMS

DLNLAM = 1.0 / C_KMS  # 1 km/s pixels


def _line(n_pix=4001, depth=0.6, sigma_pix=8.0):
    i = np.arange(n_pix)
    return 1.0 - depth * np.exp(-0.5 * ((i - n_pix // 2 - 0.3) / sigma_pix) ** 2)


def _centroid(flux):
    d = 1.0 - np.asarray(flux, dtype=np.float64)
    i = np.arange(d.shape[-1]) - d.shape[-1] // 2
    return np.sum(i * d, axis=-1) / np.sum(d, axis=-1)


def test_doppler_shift_wave_analytic():
    wave = np.array([4000.0, 5000.0, 8000.0])
    for rv in (-300.0, 0.0, 25.0, 1000.0):
        b = rv / C_KMS
        expected = wave * np.sqrt((1 + b) / (1 - b))
        np.testing.assert_allclose(doppler_shift_wave(wave, rv), expected, rtol=1e-14)
        got = doppler_shift_wave(jnp.asarray(wave, jnp.float32), rv)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-7)
    # first order: lambda (1 + v/c)
    assert doppler_factor(30.0) == pytest.approx(1 + 30.0 / C_KMS, rel=1e-8)


def test_centroid_shift_matches_analytic():
    flux = jnp.asarray(_line(), jnp.float32)
    rvs = np.linspace(-500.0, 500.0, 21)
    shifted = jax.jit(jax.vmap(doppler_shift, in_axes=(None, 0, None)), static_argnums=2)(
        flux, jnp.asarray(rvs, jnp.float32), DLNLAM
    )
    measured_kms = (_centroid(shifted) - _centroid(flux)) * DLNLAM * C_KMS
    b = rvs / C_KMS
    expected_kms = C_KMS * np.log(np.sqrt((1 + b) / (1 - b)))  # shift in ln(lambda), as km/s
    np.testing.assert_array_less(np.abs(measured_kms - expected_kms), 0.01)
    # positive rv moves the line redward (higher index)
    assert measured_kms[-1] > 499.0 and measured_kms[0] < -499.0


def test_shift_pixels_and_batching():
    assert float(shift_pixels(C_KMS * 1e-4, 1e-4)) == pytest.approx(1.0, rel=1e-4)
    flux = jnp.asarray(np.stack([_line(), _line(sigma_pix=4.0)]), jnp.float32)
    rv = jnp.asarray([10.0, -20.0], jnp.float32)
    batched = doppler_shift(flux, rv, DLNLAM)
    one = doppler_shift(flux[1], rv[1], DLNLAM)
    np.testing.assert_allclose(np.asarray(batched[1]), np.asarray(one), rtol=0, atol=0)
    # integer-pixel shifts are exact rolls with edge fill
    n = flux.shape[-1]
    rv3 = C_KMS * np.tanh(3 * DLNLAM)  # exactly 3 pixels
    out = np.asarray(doppler_shift(np.asarray(flux[0], np.float64), rv3, DLNLAM))
    np.testing.assert_allclose(out[3:], np.asarray(flux[0])[: n - 3], atol=1e-6)
    np.testing.assert_allclose(out[:3], float(flux[0, 0]), atol=1e-6)


def test_edges_take_edge_value():
    flux = jnp.linspace(0.5, 1.5, 50)
    out = doppler_shift(flux, 200.0, DLNLAM)  # shift of ~200 pixels, beyond the grid
    np.testing.assert_allclose(np.asarray(out), 0.5, rtol=1e-6)


def test_gradients_finite_and_correct():
    flux = jnp.asarray(_line(n_pix=401), jnp.float32)
    weights = jnp.asarray(np.random.default_rng(0).random(401), jnp.float32)

    @jax.jit
    def f(rv):
        return jnp.sum(weights * doppler_shift(flux, rv, DLNLAM))

    grad = jax.jit(jax.grad(f))
    for rv in (0.0, 0.5, 17.3, -250.0):
        assert jnp.isfinite(grad(rv))
    # Away from integer-pixel shifts the function is linear in the fraction;
    # central differences with eps = 0.05 km/s stay within one pixel segment.
    check_grads(f, (17.3,), order=1, modes=["fwd", "rev"], eps=0.05, atol=1e-2, rtol=1e-2)
    gflux = jax.grad(lambda fl: jnp.sum(doppler_shift(fl, 17.3, DLNLAM) ** 2))(flux)
    assert jnp.all(jnp.isfinite(gflux))


def test_wavelength_grid_consistency():
    # shifting a line on a log grid puts it where doppler_shift_wave says
    wave = log_lambda_grid(5000.0, 5020.0, pixel_kms=1.0)
    center = 5010.0
    flux = 1.0 - 0.5 * np.exp(-0.5 * ((wave - center) / 0.05) ** 2)
    out = np.asarray(doppler_shift(flux, 120.0, 1.0 / C_KMS), np.float64)
    d = 1.0 - out
    lam_c = np.exp(np.sum(np.log(wave) * d) / np.sum(d))
    assert lam_c == pytest.approx(doppler_shift_wave(center, 120.0), abs=2e-4)
