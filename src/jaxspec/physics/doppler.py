"""Relativistic Doppler shift, on wavelengths and on spectra sampled uniformly in ln(lambda).

Convention (the whole library): velocities in km/s, positive ``rv`` means the
source recedes, and

    lambda_obs = lambda_rest * sqrt((1 + b) / (1 - b)),   b = rv / c,

the relativistic longitudinal Doppler factor (it equals ``1 + rv/c`` to first
order). On a grid uniform in ln(lambda) this is a constant shift of
``ln(factor) / dlnlam`` pixels, so shifting a spectrum is a gather at a
constant fractional offset rather than a search (``jnp.interp``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.physics.constants import C_KMS
from jaxspec.physics.grid import _positive_finite

__all__ = ["doppler_factor", "doppler_shift", "doppler_shift_wave", "shift_pixels"]


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray | np.generic | float | int | list | tuple)


def _ln_factor(rv):
    """ln of the Doppler factor, = artanh(rv / c); accurate in float32 for small rv."""
    b = rv / C_KMS
    return 0.5 * (jnp.log1p(b) - jnp.log1p(-b))


def doppler_factor(rv):
    """Relativistic Doppler factor ``sqrt((1 + b) / (1 - b))``, ``b = rv / c``.

    Args:
        rv: radial velocity [km/s], any shape; positive = receding (redshift).
            ``|rv| < c``.

    Returns:
        ``lambda_obs / lambda_rest``, same shape as ``rv``: a float64 numpy
        array for numpy / Python input, a JAX array otherwise.
    """
    if _is_numpy(rv):
        b = np.asarray(rv, dtype=np.float64) / C_KMS
        return np.sqrt((1.0 + b) / (1.0 - b))
    return jnp.exp(_ln_factor(jnp.asarray(rv)))


def shift_pixels(rv, dlnlam: float):
    """Shift in pixels of a Doppler shift by ``rv`` on a grid uniform in ln(lambda).

    Args:
        rv: radial velocity [km/s], any shape.
        dlnlam: grid step in ln(lambda) (static Python float), e.g. from
            :func:`jaxspec.physics.grid_step`.

    Returns:
        ``ln(doppler_factor(rv)) / dlnlam`` [pixels], same shape as ``rv``
        (positive = towards longer wavelength).

    Raises:
        ValueError: if ``dlnlam`` is not a positive finite static number.
    """
    dlnlam = _positive_finite(dlnlam, "dlnlam")
    return _ln_factor(jnp.asarray(rv)) / dlnlam


def doppler_shift(flux, rv, dlnlam: float) -> jax.Array:
    """Doppler-shift a spectrum sampled on a grid uniform in ln(lambda).

    ``out[..., i]`` is ``flux`` linearly interpolated at pixel position
    ``i - s`` with ``s = shift_pixels(rv, dlnlam)``: for positive ``rv``
    features move to longer wavelength (higher index). Positions outside the
    grid take the edge value (normalized spectra are ~1 there). Linear
    interpolation at a constant offset moves the centroid of any feature that
    stays inside the grid by exactly ``s`` pixels; it smooths slightly (by at
    most a quarter pixel squared in variance), so the model grid should be
    finer than the data.

    The gradient with respect to ``rv`` is the finite-difference slope of the
    flux between neighbouring pixels: finite everywhere, piecewise constant in
    ``rv`` between integer-pixel shifts.

    Args:
        flux: shape (..., P), on a grid uniform in ln(lambda).
        rv: radial velocity [km/s], a scalar or an array broadcastable to
            ``flux.shape[:-1]`` (one velocity per spectrum).
        dlnlam: grid step in ln(lambda) (static Python float).

    Returns:
        shape ``broadcast(flux.shape[:-1], rv.shape) + (P,)``.

    Raises:
        ValueError: if ``flux`` is 0-d or ``dlnlam`` is not a positive number.
    """
    flux = jnp.asarray(flux)
    if flux.ndim == 0:
        raise ValueError("flux must have a pixel axis (shape (..., P)), got a scalar")
    return _doppler_shift(flux, jnp.asarray(rv), _positive_finite(dlnlam, "dlnlam"))


@functools.partial(jax.jit, static_argnums=2)
def _doppler_shift(flux, rv, dlnlam):
    n_pix = flux.shape[-1]
    s = _ln_factor(rv) / dlnlam
    # position i - s = i + k + t with integer k and t in [0, 1)
    k = jnp.floor(-s)
    t = (-s - k)[..., None]
    k = k.astype(jnp.int32)[..., None]
    idx = jnp.arange(n_pix, dtype=jnp.int32) + k
    shape = jnp.broadcast_shapes(flux.shape, idx.shape)
    flux_b = jnp.broadcast_to(flux, shape)
    left = jnp.take_along_axis(flux_b, jnp.broadcast_to(jnp.clip(idx, 0, n_pix - 1), shape), -1)
    right = jnp.take_along_axis(
        flux_b, jnp.broadcast_to(jnp.clip(idx + 1, 0, n_pix - 1), shape), -1
    )
    t = t.astype(flux.dtype) if jnp.issubdtype(flux.dtype, jnp.inexact) else t
    return left + t * (right - left)


def doppler_shift_wave(wave, rv):
    """Observed wavelength of a rest wavelength for radial velocity ``rv``.

    Args:
        wave: rest (vacuum) wavelengths [A], any shape.
        rv: radial velocity [km/s], broadcastable with ``wave``.

    Returns:
        ``wave * doppler_factor(rv)`` [A]: float64 numpy for numpy / Python
        inputs, a JAX array if either input is a JAX array.
    """
    if _is_numpy(wave) and _is_numpy(rv):
        return np.asarray(wave, dtype=np.float64) * doppler_factor(rv)
    return jnp.asarray(wave) * jnp.exp(_ln_factor(jnp.asarray(rv)))
