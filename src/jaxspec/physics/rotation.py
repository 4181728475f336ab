"""Rotational broadening with linear limb darkening (Gray's kernel), jit-static and grad-safe.

The broadening profile of a rigidly rotating sphere with linear limb darkening
``epsilon`` (Gray, *The Observation and Analysis of Stellar Photospheres*) is

    G(dv) = [2 (1 - eps) sqrt(1 - x^2) + (pi eps / 2) (1 - x^2)]
            / [pi vsini (1 - eps / 3)],           x = dv / vsini, |x| <= 1.

On a grid uniform in ln(lambda) a pixel spans ``dv_pix = dlnlam * c``. Each
kernel tap is the *exact* integral of G over its pixel, taken from the
analytic cumulative integral

    F(x) = [(1 - eps) (x sqrt(1 - x^2) + arcsin x) + (pi eps / 2)(x - x^3 / 3)]
           / [pi (1 - eps / 3)],                  F(+-1) = +-1/2,

so the taps telescope to exactly 1 (equivalent width is conserved), the kernel
is exactly the identity for ``|vsini| < dv_pix / 2``, and it varies smoothly
with vsini even when vsini is below a pixel (no sampling of G at points).

The kernel has ``2 * ceil(vsini_max / dv_pix) + 1`` taps, fixed by static
arguments, so ``jit`` never recompiles when vsini changes; vsini is used
through its absolute value and clipped to ``vsini_max``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxspec.physics.constants import C_KMS
from jaxspec.physics.convolve import convolve_same
from jaxspec.physics.grid import _positive_finite

__all__ = ["rotation_kernel", "rotational_broadening"]


def _safe_sqrt_1mx2(x):
    """sqrt(1 - x^2), 0 for |x| >= 1, with a derivative that is finite (0) there too: the inner
    ``where`` keeps sqrt's infinite slope at 0 out of the derivative (a plain ``sqrt(max(.., 0))``
    gives inf * 0 = NaN in second derivatives at the clipped edges)."""
    u = 1.0 - x * x
    inside = u > 0.0
    return jnp.where(inside, jnp.sqrt(jnp.where(inside, u, 1.0)), 0.0)


@jax.custom_jvp
def _disk_area(x):
    """(x sqrt(1 - x^2) + arcsin x) / 2 for x in [-1, 1]: area under sqrt(1 - t^2) from 0 to x."""
    return 0.5 * (x * _safe_sqrt_1mx2(x) + jnp.arcsin(x))


@_disk_area.defjvp
def _disk_area_jvp(primals, tangents):
    # The derivative is sqrt(1 - x^2), finite at |x| = 1; autodiff of the
    # formula above would form inf * 0 = NaN there. Differentiating this rule
    # again (Hessians, forward-over-reverse) differentiates _safe_sqrt_1mx2.
    (x,), (dx,) = primals, tangents
    return _disk_area(x), _safe_sqrt_1mx2(x) * dx


def _cdf(x, epsilon):
    """Cumulative integral F(x) of the normalized rotation profile (x clipped to [-1, 1])."""
    uniform = (1.0 - epsilon) * 2.0 * _disk_area(x)
    darkened = (0.5 * math.pi * epsilon) * (x - x**3 / 3.0)
    return (uniform + darkened) / (math.pi * (1.0 - epsilon / 3.0))


def _half_width(vsini_max: float, dv_pix: float) -> int:
    # the small slack keeps e.g. 300 / (dlnlam * c) = 300.0000000001 at 300
    return int(math.ceil(vsini_max / dv_pix - 1e-9))


def rotation_kernel(vsini, dlnlam: float, *, epsilon=0.6, vsini_max: float = 300.0) -> jax.Array:
    """Pixel-integrated rotational broadening kernel on a grid uniform in ln(lambda).

    Args:
        vsini: projected rotational velocity [km/s], scalar (may be traced).
            Its absolute value is used, clipped to ``vsini_max``.
        dlnlam: grid step in ln(lambda) (static Python float); one pixel is
            ``dv_pix = dlnlam * c`` [km/s].
        epsilon: linear limb-darkening coefficient in [0, 1] (may be traced;
            checked when concrete).
        vsini_max: largest vsini the kernel can represent [km/s] (static).

    Returns:
        shape (2 * ceil(vsini_max / dv_pix) + 1,), taps summing to 1,
        symmetric about the centre tap. Exactly the identity (1 at the centre,
        0 elsewhere) for ``|vsini| < dv_pix / 2``. The gradient with respect
        to vsini is finite everywhere, and 0 there.

    Raises:
        ValueError: if ``dlnlam`` or ``vsini_max`` is not a positive static
            number, ``vsini`` is not a scalar, or a concrete ``epsilon`` lies
            outside [0, 1].
    """
    dlnlam = _positive_finite(dlnlam, "dlnlam")
    vsini_max = _positive_finite(vsini_max, "vsini_max")
    vsini = jnp.asarray(vsini)
    if vsini.ndim != 0:
        raise ValueError(
            f"vsini must be a scalar, got shape {vsini.shape}; use jax.vmap for several stars"
        )
    if not isinstance(epsilon, jax.core.Tracer):
        eps_val = float(epsilon)
        if not 0.0 <= eps_val <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {eps_val}")
    dv_pix = dlnlam * C_KMS
    return _rotation_kernel(vsini, epsilon, dv_pix, _half_width(vsini_max, dv_pix), vsini_max)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _rotation_kernel(vsini, epsilon, dv_pix, n_half, vsini_max):
    dtype = jnp.result_type(vsini, jnp.zeros(()).dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.zeros(()).dtype
    vs = jnp.clip(jnp.abs(vsini.astype(dtype)), 0.0, vsini_max)
    # Below half a pixel every pixel edge lies outside [-vsini, vsini] and the
    # kernel is the identity whatever vsini is; a floor inside that range keeps
    # the division finite and the gradient exactly 0 (no NaN at vsini = 0).
    vs_safe = jnp.maximum(vs, 0.25 * dv_pix)
    edges = (jnp.arange(-n_half, n_half + 2, dtype=dtype) - 0.5) * dv_pix
    x = jnp.clip(edges / vs_safe, -1.0, 1.0)
    cdf = _cdf(x, jnp.asarray(epsilon, dtype))
    # Pixels wholly outside [-vsini, vsini] have x_lo == x_hi: set them to an
    # exact 0 (XLA may round F differently in two places of one fused loop).
    taps = jnp.where(x[1:] > x[:-1], jnp.maximum(jnp.diff(cdf), 0.0), 0.0)
    # The taps telescope to F(1) - F(-1) = 1; dividing by their sum makes that
    # exact in floating point (and the identity exactly 1 at the centre).
    return taps / jnp.sum(taps)


def rotational_broadening(
    flux, vsini, dlnlam: float, *, epsilon=0.6, vsini_max: float = 300.0
) -> jax.Array:
    """Broaden spectra by rotation: :func:`convolve_same` with :func:`rotation_kernel`.

    Args:
        flux: shape (..., P), in any units (a linear convolution, kernel
            normalized to 1), on a grid uniform in ln(lambda) with step
            ``dlnlam``; edges are extended with their edge values.
        vsini: projected rotational velocity [km/s], scalar (``|vsini|`` used,
            clipped to ``vsini_max``); vmap for one per spectrum.
        dlnlam: grid step in ln(lambda) (static).
        epsilon: linear limb-darkening coefficient in [0, 1].
        vsini_max: largest representable vsini [km/s] (static; sets the
            kernel size).

    Returns:
        shape (..., P).

    Raises:
        ValueError: as :func:`rotation_kernel` and :func:`convolve_same`.
    """
    kernel = rotation_kernel(vsini, dlnlam, epsilon=epsilon, vsini_max=vsini_max)
    return convolve_same(flux, kernel)
