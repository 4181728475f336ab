"""Gaussian broadening: instrumental line-spread function and macroturbulence-like kernels.

Kernels live on a grid uniform in ln(lambda), where a Gaussian of constant
resolving power ``R = lambda / FWHM`` has a constant width in pixels:
``sigma_lnlam = 1 / (R * 2 sqrt(2 ln 2))``. Each tap is the Gaussian
integrated over its pixel (a difference of error functions), then normalized to
sum 1. The kernel half-width is static (set by the widest kernel allowed), so
``jit`` never recompiles when the width changes.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from jaxspec.physics.constants import C_KMS
from jaxspec.physics.convolve import convolve_same
from jaxspec.physics.grid import _positive_finite

__all__ = ["FWHM_TO_SIGMA", "apply_lsf", "gaussian_broadening", "gaussian_kernel"]

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))  # sigma = FWHM * this
_TRUNCATE = 5.0  # kernel half-width in units of the largest sigma
# Below this sigma [pixels] the pixel-integrated Gaussian is the identity to
# better than 1e-20 (erfc(0.5 / (0.05 sqrt 2)) ~ 1e-24); flooring sigma there
# keeps divisions finite and the gradient exactly 0 near sigma = 0.
_SIGMA_FLOOR_PIX = 0.05


def gaussian_kernel(sigma_pix, half_width: int) -> jax.Array:
    """Pixel-integrated Gaussian kernel, normalized to sum 1.

    Args:
        sigma_pix: Gaussian standard deviation [pixels], scalar (may be
            traced); its absolute value is used. Values below 0.05 pixel give
            the identity kernel (to < 1e-20) with zero gradient.
        half_width: static number of taps on each side (kernel size
            ``2 * half_width + 1``).

    Returns:
        shape (2 * half_width + 1,), symmetric, summing to 1.

    Raises:
        ValueError: if ``half_width`` is not a non-negative integer or
            ``sigma_pix`` is not a scalar.
    """
    if isinstance(half_width, bool) or not isinstance(half_width, int) or half_width < 0:
        raise ValueError(f"half_width must be a non-negative int, got {half_width!r}")
    sigma = jnp.asarray(sigma_pix)
    if sigma.ndim != 0:
        raise ValueError(f"sigma_pix must be a scalar, got shape {sigma.shape}")
    return _gaussian_kernel(sigma, half_width)


@functools.partial(jax.jit, static_argnums=1)
def _gaussian_kernel(sigma, half_width):
    dtype = jnp.result_type(sigma, jnp.zeros(()).dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.zeros(()).dtype
    sigma = jnp.maximum(jnp.abs(sigma.astype(dtype)), _SIGMA_FLOOR_PIX)
    edges = jnp.arange(-half_width, half_width + 2, dtype=dtype) - 0.5
    cdf = erf(edges / (sigma * math.sqrt(2.0)))
    taps = jnp.maximum(jnp.diff(cdf), 0.0)  # erf is monotonic; no rounding below 0
    return taps / jnp.sum(taps)


def gaussian_broadening(flux, sigma_kms, dlnlam: float, *, sigma_max_kms: float) -> jax.Array:
    """Convolve spectra with a Gaussian of standard deviation ``sigma_kms``.

    For example a Gaussian macroturbulence, or an LSF given as a velocity
    width. ``sigma_kms`` is clipped to ``sigma_max_kms`` (no error, so the
    function stays traceable); the kernel spans +-5 ``sigma_max_kms``.

    Args:
        flux: shape (..., P), on a grid uniform in ln(lambda).
        sigma_kms: Gaussian standard deviation [km/s], scalar (may be traced;
            |sigma_kms| used).
        dlnlam: grid step in ln(lambda) (static).
        sigma_max_kms: largest sigma [km/s] (static; sets the kernel size).

    Returns:
        shape (..., P).

    Raises:
        ValueError: if ``dlnlam`` or ``sigma_max_kms`` is not a positive
            static number.
    """
    dlnlam = _positive_finite(dlnlam, "dlnlam")
    sigma_max_kms = _positive_finite(sigma_max_kms, "sigma_max_kms")
    dv_pix = dlnlam * C_KMS
    half_width = int(math.ceil(_TRUNCATE * sigma_max_kms / dv_pix))
    sigma = jnp.minimum(jnp.abs(jnp.asarray(sigma_kms)), sigma_max_kms)
    kernel = gaussian_kernel(sigma / dv_pix, half_width)
    return convolve_same(flux, kernel)


def apply_lsf(flux, resolution, dlnlam: float, *, min_resolution: float = 2000.0) -> jax.Array:
    """Convolve spectra with a Gaussian line-spread function of resolving power R.

    ``R = lambda / FWHM``; in ln(lambda) the Gaussian has
    ``sigma = 1 / (R * 2 sqrt(2 ln 2))``. The kernel spans +-5 sigma of the
    widest LSF, the one at ``min_resolution``.

    Args:
        flux: shape (..., P), on a grid uniform in ln(lambda).
        resolution: resolving power R, scalar. ``None`` or ``inf`` means no
            broadening (``flux`` returned unchanged, as an array). A traced
            value below ``min_resolution`` is clipped to it.
        dlnlam: grid step in ln(lambda) (static).
        min_resolution: lowest R allowed (static; sets the kernel size).

    Returns:
        shape (..., P).

    Raises:
        ValueError: if a concrete ``resolution`` is not positive or is below
            ``min_resolution``, or ``dlnlam`` / ``min_resolution`` is not a
            positive static number.
    """
    dlnlam = _positive_finite(dlnlam, "dlnlam")
    min_resolution = _positive_finite(min_resolution, "min_resolution")
    if resolution is None:
        return jnp.asarray(flux)
    if not isinstance(resolution, jax.core.Tracer):
        r = float(resolution)
        if math.isinf(r) and r > 0:
            return jnp.asarray(flux)
        if not r > 0:
            raise ValueError(f"resolution must be > 0, got {r}")
        if r < min_resolution:
            raise ValueError(
                f"resolution {r} is below min_resolution {min_resolution}; "
                "lower min_resolution (it sets the kernel size)"
            )
    half_width = int(math.ceil(_TRUNCATE * FWHM_TO_SIGMA / (min_resolution * dlnlam)))
    r = jnp.maximum(jnp.asarray(resolution), min_resolution)
    sigma_pix = FWHM_TO_SIGMA / (r * dlnlam)  # inf resolution -> 0 -> identity
    kernel = gaussian_kernel(sigma_pix, half_width)
    return convolve_same(flux, kernel)
