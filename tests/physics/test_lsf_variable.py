"""Per-pixel Gaussian LSF: constant-R limit, dense reference, local FWHM, EW, gradients, errors.

Passes in float32 (default) and with ``JAX_ENABLE_X64=1``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import erf

from jaxspec.physics import apply_lsf, apply_lsf_variable, log_lambda_grid, resolution_on_grid
from jaxspec.physics.constants import C_KMS
from jaxspec.physics.lsf import FWHM_TO_SIGMA

FLOAT = jnp.zeros(()).dtype  # float32, or float64 under JAX_ENABLE_X64=1
X64 = FLOAT == jnp.float64


def _half_width(min_resolution, dlnlam):
    return int(math.ceil(5.0 * FWHM_TO_SIGMA / (min_resolution * dlnlam)))


def _dense_reference(flux, resolution, dlnlam, min_resolution):
    """Explicit (P, P) matrix: row i is the pixel-integrated Gaussian of R_i, normalized, edge-clamped."""
    n = flux.shape[-1]
    h = _half_width(min_resolution, dlnlam)
    k = np.arange(-h, h + 1, dtype=np.float64)
    matrix = np.zeros((n, n))
    for i in range(n):
        sigma = FWHM_TO_SIGMA / (resolution[i] * dlnlam)
        s = sigma * np.sqrt(2.0)
        w = 0.5 * (erf((k + 0.5) / s) - erf((k - 0.5) / s))
        w /= w.sum()
        for kk, wk in zip(k.astype(int), w, strict=True):
            matrix[i, min(max(i + kk, 0), n - 1)] += wk
    return flux @ matrix.T


def _fwhm(x, y):
    """FWHM of a single peak, from linearly interpolated half-maximum crossings."""
    half = 0.5 * y.max()
    above = np.nonzero(y >= half)[0]
    i0, i1 = above[0], above[-1]
    left = x[i0 - 1] + (half - y[i0 - 1]) * (x[i0] - x[i0 - 1]) / (y[i0] - y[i0 - 1])
    right = x[i1] + (half - y[i1]) * (x[i1 + 1] - x[i1]) / (y[i1 + 1] - y[i1])
    return right - left


METHODS = ["scan", "gather"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("resolution", [4000.0, 11000.0, 50000.0])
def test_constant_resolution_equals_apply_lsf(resolution, method):
    dlnlam = 2.0 / C_KMS
    rng = np.random.default_rng(1)
    flux = 1.0 - 0.5 * rng.random((2, 700))  # batch axis; edges differ from 1 (edge padding)
    r = np.full(700, resolution)
    out = np.asarray(apply_lsf_variable(flux, r, dlnlam, min_resolution=4000.0, method=method))
    ref = np.asarray(apply_lsf(flux, resolution, dlnlam, min_resolution=4000.0))
    assert out.shape == flux.shape
    # everywhere, edges included: both pad by repeating the edge pixel
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-12 if X64 else 1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_matches_dense_reference_linear_resolution(method):
    dlnlam = 2.0 / C_KMS
    n = 600
    rng = np.random.default_rng(2)
    flux = 1.0 - 0.3 * rng.random((3, n))
    flux[:, 300] = 0.0  # a sharp line
    r = np.linspace(5000.0, 20000.0, n)
    ref = _dense_reference(flux, r, dlnlam, 4000.0)
    f = jax.jit(lambda x, res: apply_lsf_variable(x, res, dlnlam, min_resolution=4000.0, method=method))
    out = np.asarray(f(flux, r))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12 if X64 else 1e-5)
    # vmap over spectra gives the batched result
    out_v = np.asarray(jax.vmap(lambda x: f(x, r))(jnp.asarray(flux)))
    np.testing.assert_allclose(out_v, out, rtol=0, atol=1e-12 if X64 else 1e-6)
    # traced resolution below min_resolution is clipped, not an error
    g = jax.jit(lambda res: apply_lsf_variable(flux[0], res, dlnlam, min_resolution=4000.0, method=method))
    low = np.where(np.arange(n) < 100, 1000.0, r)
    clipped = np.where(np.arange(n) < 100, 4000.0, r)
    np.testing.assert_allclose(np.asarray(g(low)), np.asarray(g(clipped)), rtol=0, atol=1e-12)


def test_local_fwhm_follows_resolution():
    wave = log_lambda_grid(5000.0, 5060.0, pixel_kms=0.5)
    dlnlam = 0.5 / C_KMS
    n = wave.size
    r = np.linspace(5000.0, 20000.0, n)
    flux = np.ones(n)
    lines = (n // 4, 3 * n // 4)
    for j in lines:
        flux[j] = 0.0
    out = np.asarray(apply_lsf_variable(flux, r, dlnlam, min_resolution=4000.0), np.float64)
    h = _half_width(4000.0, dlnlam)
    widths = []
    for j in lines:
        sl = slice(j - h, j + h + 1)
        fwhm = _fwhm(wave[sl], 1.0 - out[sl])
        expected = wave[j] / r[j]
        assert abs(fwhm / expected - 1.0) < 0.02
        widths.append(fwhm)
    # the two lines really differ (R rises 1.86x between them)
    assert widths[0] > 1.8 * widths[1]


def test_conserves_equivalent_width():
    # The gather form changes an EW by ~0.5 d^2(sigma^2)/d(pixel)^2 (sigma in
    # pixels): 1.3e-5 here (R 5000 -> 20000 over ~5900 pixels), 1.4e-4 if the
    # same R range were squeezed into 1800 pixels.
    wave = log_lambda_grid(5000.0, 5100.0, pixel_kms=1.0)
    dlnlam = 1.0 / C_KMS
    n = wave.size
    r = np.linspace(5000.0, 20000.0, n)
    x = np.arange(n)
    centre = n // 2
    depth = 0.6 * np.exp(-0.5 * ((x - centre) / 2.5) ** 2)
    flux = 1.0 - depth
    out = np.asarray(apply_lsf_variable(flux, r, dlnlam, min_resolution=4000.0), np.float64)
    dwave = wave * dlnlam  # pixel widths [A]
    ew_in = np.sum(depth * dwave)
    ew_out = np.sum((1.0 - out) * dwave)
    assert ew_out == pytest.approx(ew_in, rel=1e-4)
    # the line did get broadened (depth reduced)
    assert 1.0 - out[centre] < 0.5 * depth[centre]


@pytest.mark.parametrize("method", METHODS)
def test_gradients_finite_and_correct(method):
    dlnlam = 3.0 / C_KMS
    n = 40
    rng = np.random.default_rng(3)
    flux = jnp.asarray(1.0 - 0.5 * rng.random(n), FLOAT)
    r0 = np.linspace(6000.0, 9000.0, n)

    def f_u(u):  # resolution scaled by u ~ 1, so that eps is a relative step
        return apply_lsf_variable(flux, r0 * u, dlnlam, min_resolution=3000.0, method=method)

    u = jnp.asarray(np.linspace(0.9, 1.1, n), FLOAT)
    check_grads(f_u, (u,), order=1, modes=["fwd", "rev"], eps=1e-2, atol=1e-3, rtol=1e-2)

    def f_flux(x):
        return apply_lsf_variable(x, r0, dlnlam, min_resolution=3000.0, method=method)

    check_grads(f_flux, (flux,), order=1, modes=["fwd", "rev"], eps=1e-2, atol=1e-3, rtol=1e-2)

    # finite everywhere: at/below the clip, and at huge R (kernel floored to a delta)
    def loss(res):
        out = apply_lsf_variable(flux**2, res, dlnlam, min_resolution=3000.0, method=method)
        return jnp.sum(out**2)

    for res in (jnp.asarray(r0, FLOAT), jnp.full(n, 3000.0, FLOAT), jnp.full(n, 1e9, FLOAT)):
        g = jax.jit(jax.grad(loss))(res)
        assert bool(jnp.all(jnp.isfinite(g)))
    assert float(jnp.max(jnp.abs(jax.grad(loss)(jnp.full(n, 1e9, FLOAT))))) == 0.0


def test_errors():
    dlnlam = 1.0 / C_KMS
    flux = np.ones((2, 50))
    r = np.full(50, 20000.0)
    with pytest.raises(ValueError, match=r"\(50,\).*\(2, 50\).*\(49,\)"):
        apply_lsf_variable(flux, r[:-1], dlnlam)
    with pytest.raises(ValueError, match="shape"):
        apply_lsf_variable(flux, np.full((2, 50), 20000.0), dlnlam)
    with pytest.raises(ValueError, match="shape"):  # traced: shape still checked
        jax.jit(lambda res: apply_lsf_variable(flux, res, dlnlam))(r[:-1])
    with pytest.raises(ValueError, match="scalar"):
        apply_lsf_variable(flux, 20000.0, dlnlam)
    with pytest.raises(ValueError, match="apply_lsf"):
        apply_lsf_variable(flux, None, dlnlam)
    for bad, msg in ((0.0, "> 0"), (-3.0, "> 0"), (np.nan, "finite"), (np.inf, "finite")):
        rb = r.copy()
        rb[7] = bad
        with pytest.raises(ValueError, match=msg):
            apply_lsf_variable(flux, rb, dlnlam)
    rb = r.copy()
    rb[3] = 1500.0
    with pytest.raises(ValueError, match="below min_resolution"):
        apply_lsf_variable(flux, rb, dlnlam)
    with pytest.raises(ValueError, match="pixel axis"):
        apply_lsf_variable(1.0, r[:1], dlnlam)
    with pytest.raises(ValueError, match="dlnlam"):
        apply_lsf_variable(flux, r, -1.0)
    with pytest.raises(ValueError, match="min_resolution"):
        apply_lsf_variable(flux, r, dlnlam, min_resolution=0.0)
    with pytest.raises(ValueError, match="method"):
        apply_lsf_variable(flux, r, dlnlam, method="fft")


def test_resolution_on_grid():
    obs_wave = np.array([5000.0, 5010.0, 5020.0, 5030.0])
    r_obs = np.array([10000.0, 12000.0, 14000.0, 16000.0])
    model = log_lambda_grid(4990.0, 5040.0, pixel_kms=5.0)
    r = resolution_on_grid(r_obs, obs_wave, model)
    assert r.shape == model.shape and r.dtype == np.float64
    inside = (model >= 5000.0) & (model <= 5030.0)
    np.testing.assert_allclose(r[inside], 10000.0 + 200.0 * (model[inside] - 5000.0), rtol=1e-12)
    assert np.all(r[model < 5000.0] == 10000.0) and np.all(r[model > 5030.0] == 16000.0)
    # and it feeds apply_lsf_variable
    dlnlam = 5.0 / C_KMS
    out = apply_lsf_variable(np.ones(model.size), r, dlnlam, min_resolution=5000.0)
    np.testing.assert_allclose(np.asarray(out), 1.0, atol=1e-6)

    with pytest.raises(ValueError, match=r"resolution_obs shape \(3,\).*obs_wave shape \(4,\)"):
        resolution_on_grid(r_obs[:3], obs_wave, model)
    with pytest.raises(ValueError, match="obs_wave"):
        resolution_on_grid(r_obs, obs_wave[::-1], model)
    with pytest.raises(ValueError, match="model_wave"):
        resolution_on_grid(r_obs, obs_wave, model.reshape(1, -1))
    with pytest.raises(ValueError, match="> 0"):
        resolution_on_grid(-r_obs, obs_wave, model)
    with pytest.raises(ValueError, match="finite"):
        resolution_on_grid(np.array([1e4, np.nan, 1e4, 1e4]), obs_wave, model)
