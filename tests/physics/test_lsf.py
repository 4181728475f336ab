"""Gaussian LSF / broadening: measured FWHM, normalization, identity limits, errors, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import erf

from jaxspec.physics import (
    FWHM_TO_SIGMA,
    apply_lsf,
    gaussian_broadening,
    gaussian_kernel,
    log_lambda_grid,
)
from jaxspec.physics.constants import C_KMS


def _fwhm(x, y):
    """FWHM of a single peak, from linearly interpolated half-maximum crossings."""
    half = 0.5 * y.max()
    above = np.nonzero(y >= half)[0]
    i0, i1 = above[0], above[-1]
    left = x[i0 - 1] + (half - y[i0 - 1]) * (x[i0] - x[i0 - 1]) / (y[i0] - y[i0 - 1])
    right = x[i1] + (half - y[i1]) * (x[i1 + 1] - x[i1]) / (y[i1 + 1] - y[i1])
    return right - left


@pytest.mark.parametrize("resolution", [20000.0, 50000.0])
def test_fwhm_of_broadened_delta_line(resolution):
    wave = log_lambda_grid(5990.0, 6010.0, pixel_kms=0.2)
    dlnlam = 0.2 / C_KMS
    center = wave.size // 2
    flux = np.ones(wave.size)
    flux[center] = 0.0  # a delta line
    lsf = jax.jit(lambda f, r: apply_lsf(f, r, dlnlam, min_resolution=10000.0))
    out = np.asarray(lsf(flux, resolution), np.float64)
    fwhm = _fwhm(wave, 1.0 - out)
    expected = wave[center] / resolution
    assert abs(fwhm / expected - 1.0) < 0.01
    # area conserved, summed over the kernel's reach (+-320 pixels; float32
    # rounding of ~640 values near 1 allows ~4e-5)
    assert np.sum(1.0 - out[center - 330 : center + 331]) == pytest.approx(1.0, abs=1e-4)


def test_gaussian_broadening_sigma():
    dlnlam = 1.0 / C_KMS
    flux = np.ones(801)
    flux[400] = 0.0
    out = np.asarray(gaussian_broadening(flux, 12.0, dlnlam, sigma_max_kms=20.0), np.float64)
    # second moment within +-100 pixels (the kernel's reach; 8 sigma): beyond
    # it 1 - out is only float32 rounding, which v^2 would amplify
    d = 1.0 - out[300:501]
    v = np.arange(-100.0, 101.0)
    sigma = np.sqrt(np.sum(d * v**2) / np.sum(d))
    # pixel integration adds 1/12 pixel^2 to the variance
    assert sigma == pytest.approx(np.sqrt(12.0**2 + 1.0 / 12.0), rel=1e-3)
    # clipped at sigma_max_kms
    wide = gaussian_broadening(flux, 50.0, dlnlam, sigma_max_kms=20.0)
    np.testing.assert_allclose(wide, gaussian_broadening(flux, 20.0, dlnlam, sigma_max_kms=20.0))


def test_kernel_limits_and_gradient():
    k = np.asarray(gaussian_kernel(0.0, 10))
    delta = np.zeros(21)
    delta[10] = 1.0
    np.testing.assert_array_equal(k, delta)
    k = np.asarray(gaussian_kernel(3.0, 15), np.float64)
    assert k.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(k, k[::-1], atol=1e-7)
    # pixel-integrated Gaussian: tap 0 = erf(0.5 / (3 sqrt 2)) (truncation renormalizes by <1e-6)
    assert k[15] == pytest.approx(erf(0.5 / (3.0 * np.sqrt(2.0))), rel=1e-5)
    assert k[17] == pytest.approx(
        0.5 * (erf(2.5 / (3.0 * np.sqrt(2.0))) - erf(1.5 / (3.0 * np.sqrt(2.0)))), rel=1e-5
    )

    def f(s):
        return gaussian_kernel(s, 10)[11]

    for s0 in (0.0, 1e-4, 2.0):
        g = jax.grad(f)(s0)
        assert jnp.isfinite(g)
    assert float(jax.grad(f)(0.0)) == 0.0
    check_grads(f, (2.0,), order=1, modes=["fwd", "rev"], eps=1e-2, atol=1e-4, rtol=1e-2)


def test_apply_lsf_identity_and_errors():
    dlnlam = 1.0 / C_KMS
    flux = jnp.asarray(np.linspace(0.5, 1.0, 300))
    assert apply_lsf(flux, None, dlnlam) is not None
    np.testing.assert_array_equal(np.asarray(apply_lsf(flux, None, dlnlam)), np.asarray(flux))
    np.testing.assert_array_equal(np.asarray(apply_lsf(flux, np.inf, dlnlam)), np.asarray(flux))
    with pytest.raises(ValueError, match="below min_resolution"):
        apply_lsf(flux, 1000.0, dlnlam)
    with pytest.raises(ValueError, match="> 0"):
        apply_lsf(flux, -5.0, dlnlam)
    with pytest.raises(ValueError, match="> 0"):
        apply_lsf(flux, 0.0, dlnlam)
    # traced resolution: no error, clipped to min_resolution, gradient finite
    f = jax.jit(lambda r: apply_lsf(flux, r, dlnlam, min_resolution=5000.0))
    np.testing.assert_allclose(f(1000.0), f(5000.0))
    g = jax.grad(lambda r: jnp.sum(apply_lsf(flux**2, r, dlnlam) ** 2))(22000.0)
    assert jnp.isfinite(g)
    # kernel size is static: +-5 sigma at min_resolution
    assert FWHM_TO_SIGMA == pytest.approx(1.0 / 2.354820045, rel=1e-9)
