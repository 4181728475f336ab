"""Rotational broadening: against an independent quadrature + numpy convolution, EW, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.integrate import quad

from jaxspec.physics import rotation_kernel, rotational_broadening
from jaxspec.physics.constants import C_KMS

EPS_LD = 0.6


def _gray_profile(dv, vsini, eps):
    """Gray's rotation profile G(dv) [1 / (km/s)], written out independently."""
    x2 = (dv / vsini) ** 2
    if x2 >= 1.0:
        return 0.0
    num = 2.0 * (1.0 - eps) * np.sqrt(1.0 - x2) + 0.5 * np.pi * eps * (1.0 - x2)
    return num / (np.pi * vsini * (1.0 - eps / 3.0))


def _reference_kernel(vsini, dv_pix, n_half, eps=EPS_LD):
    """Each tap: quad of G over the pixel [k - 1/2, k + 1/2] dv_pix (no renormalization)."""
    taps = np.zeros(2 * n_half + 1)
    for j, k in enumerate(range(-n_half, n_half + 1)):
        lo = max((k - 0.5) * dv_pix, -vsini)
        hi = min((k + 0.5) * dv_pix, vsini)
        if hi > lo:
            taps[j] = quad(_gray_profile, lo, hi, args=(vsini, eps), epsabs=1e-12)[0]
    return taps


def _reference_broadening(flux, kernel):
    h = (kernel.size - 1) // 2
    return np.convolve(np.pad(flux, h, mode="edge"), kernel, mode="valid")


def _spectrum(n_pix, centers, depth=0.5, sigma_pix=3.0):
    i = np.arange(n_pix)
    flux = np.ones(n_pix)
    for c in centers:
        flux -= depth * np.exp(-0.5 * ((i - c) / sigma_pix) ** 2)
    return flux


@pytest.mark.parametrize("vsini", [0.7, 5.0, 50.0, 300.0])
def test_matches_independent_reference(vsini):
    dv_pix = 1.0
    dlnlam = dv_pix / C_KMS
    kernel = np.asarray(rotation_kernel(vsini, dlnlam), np.float64)
    ref_kernel = _reference_kernel(vsini, dv_pix, (kernel.size - 1) // 2)
    assert kernel.size == 601
    # float32 taps are differences of F ~ 0.5: a few 6e-8 ulps of absolute error
    np.testing.assert_allclose(kernel, ref_kernel, rtol=0, atol=3e-7)
    # edge lines too: the edge padding must behave like numpy's "edge" mode
    flux = _spectrum(1500, centers=[5, 400, 420, 1000, 1490])
    out = np.asarray(rotational_broadening(flux, vsini, dlnlam))
    np.testing.assert_allclose(out, _reference_broadening(flux, ref_kernel), rtol=0, atol=1e-4)


@pytest.mark.parametrize("vsini", [5.0, 50.0, 300.0])
def test_equivalent_width_conserved(vsini):
    dlnlam = 1.0 / C_KMS
    flux = _spectrum(2000, centers=[1000.0])
    out = np.asarray(rotational_broadening(flux, vsini, dlnlam), np.float64)
    # Sum over the broadened line only (+-(vsini + 20) pixels): far from it,
    # float32 rounding of the kernel's unit sum (~6e-8 per pixel) would add up.
    win = slice(1000 - int(vsini) - 20, 1000 + int(vsini) + 21)
    ew_in, ew_out = np.sum(1.0 - flux), np.sum(1.0 - out[win])
    assert abs(ew_out / ew_in - 1.0) < 1e-4
    # and the line really was broadened (depth reduced)
    assert out.min() > flux.min() + 0.01 * min(vsini, 50.0) / 5.0


def test_identity_below_half_pixel_and_sign():
    dlnlam = 2.0 / C_KMS  # 2 km/s pixels
    for vsini in (0.0, 1e-3, 0.99, -0.5):
        k = np.asarray(rotation_kernel(vsini, dlnlam))
        delta = np.zeros_like(k)
        delta[k.size // 2] = 1.0
        np.testing.assert_array_equal(k, delta)  # exactly, not approximately
    flux = _spectrum(300, centers=[150.0])
    # identity kernel; the FFT path of convolve_same rounds at the 1e-7 level
    np.testing.assert_allclose(
        np.asarray(rotational_broadening(flux, 0.0, dlnlam)), flux, atol=2e-6
    )
    np.testing.assert_array_equal(
        np.asarray(rotation_kernel(-40.0, dlnlam)), np.asarray(rotation_kernel(40.0, dlnlam))
    )
    # above vsini_max: clipped, no error
    np.testing.assert_array_equal(
        np.asarray(rotation_kernel(450.0, dlnlam)), np.asarray(rotation_kernel(300.0, dlnlam))
    )


def test_kernel_properties():
    dlnlam = 1.0 / C_KMS
    for vsini in (1.3, 17.0, 299.0):
        k = np.asarray(rotation_kernel(vsini, dlnlam, epsilon=0.3, vsini_max=300.0), np.float64)
        assert k.sum() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(k, k[::-1], atol=1e-7)
        assert np.all(k >= 0)
        # support: nothing beyond the pixel that contains vsini
        n_half = k.size // 2
        assert np.all(k[n_half + int(np.ceil(vsini + 0.5)) :] == 0)
    assert rotation_kernel(10.0, dlnlam, vsini_max=50.0).shape == (101,)
    with pytest.raises(ValueError, match="epsilon"):
        rotation_kernel(10.0, dlnlam, epsilon=1.5)
    with pytest.raises(ValueError, match="dlnlam"):
        rotation_kernel(10.0, -1.0)
    with pytest.raises(ValueError, match="scalar"):
        rotation_kernel(jnp.ones(2), dlnlam)


def test_gradients_at_the_edges():
    # 5 km/s pixels keep the kernel (121 taps) and the check fast.
    dlnlam = 5.0 / C_KMS
    flux = jnp.asarray(_spectrum(400, centers=[150.0, 230.0], sigma_pix=2.0))
    template = 1.0 - flux

    @jax.jit
    def f(vsini):
        # overlap of the broadened lines with the unbroadened ones: ~3-5,
        # sensitive to vsini everywhere above half a pixel
        return jnp.sum(template * rotational_broadening(flux, vsini, dlnlam))

    # vsini = 0 and 1e-3: the kernel is the identity for |vsini| < 2.5 km/s,
    # so f is flat there; eps = 0.5 km/s stays inside that interval and the
    # numerical derivative is exactly 0, like the analytic one.
    # vsini = vsini_max = 300: the clip makes f flat on the right; JAX's clip
    # gives half the left derivative at the tie, which is what a central
    # difference measures, up to a one-sided truncation error eps f'' / 4
    # (~2e-3 relative here). eps = 0.5 km/s (0.1 pixel) stays clear of the
    # pixel edges at 297.5 and 302.5 km/s where the taps' derivative kinks.
    # float32 rounding of f (~5e-7) / (2 eps) adds ~5e-7. So rtol = 1e-2 and
    # atol = 1e-5, while f'(300) = 2.4e-4: a missing or doubled factor fails.
    for v0 in (0.0, 1e-3, 300.0, 42.0):
        check_grads(f, (v0,), order=1, modes=["fwd", "rev"], eps=0.5, atol=1e-5, rtol=1e-2)
    # finite everywhere, including around half a pixel, under vmap
    v = jnp.asarray([0.0, 1e-3, 300.0, -1.0, 2.4, 2.6, 7.0, 120.0, 299.9, 400.0])
    grads = jax.jit(jax.vmap(jax.grad(f)))(v)
    assert jnp.all(jnp.isfinite(grads))
    assert float(grads[0]) == 0.0 and float(grads[1]) == 0.0
    assert float(grads[2]) > 1e-4  # not trivially flat at the clip


def test_second_derivatives_finite():
    # The sampler's mass matrix and mode centres come from the Hessian of the log density
    # (forward-over-reverse). Taps whose pixel lies beyond vsini have x clipped to +-1, where
    # sqrt(1 - x^2) has an infinite slope: a plain sqrt(max(., 0)) made inf * 0 = NaN there, so
    # every Hessian row of vsini was NaN. Checked against central differences of the gradient
    # (42 km/s: well inside the kernel; 7 km/s: a few pixels) and finite on a grid.
    dlnlam = 5.0 / C_KMS
    flux = jnp.asarray(_spectrum(400, centers=[150.0, 230.0], sigma_pix=2.0))
    template = 1.0 - flux

    def f(vsini):
        return jnp.sum(template * rotational_broadening(flux, vsini, dlnlam))

    hess = jax.jit(jax.vmap(jax.hessian(f)))
    grad = jax.jit(jax.vmap(jax.grad(f)))
    v = jnp.asarray([0.0, 1e-3, 2.4, 2.6, 7.0, 42.0, 120.0, 299.9, 300.0, 400.0])
    assert jnp.all(jnp.isfinite(hess(v))), hess(v)
    for v0 in (7.0, 42.0):
        h = float(hess(jnp.asarray([v0]))[0])
        fd = float(jnp.diff(grad(jnp.asarray([v0 - 0.25, v0 + 0.25])))[0]) / 0.5
        assert abs(h - fd) <= 0.05 * abs(fd) + 1e-6, (v0, h, fd)


def test_no_recompilation_when_vsini_changes():
    n_traces = 0
    dlnlam = 1.0 / C_KMS

    @jax.jit
    def f(flux, vsini):
        nonlocal n_traces
        n_traces += 1
        return rotational_broadening(flux, vsini, dlnlam)

    flux = jnp.asarray(_spectrum(800, centers=[400.0]), jnp.float32)
    for vsini in (0.0, 3.0, 150.0, 300.0):
        f(flux, vsini).block_until_ready()
    assert n_traces == 1
