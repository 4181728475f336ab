"""Wavelength grids uniform in ln(lambda), their validation, and resampling.

Wavelengths are vacuum Angstrom and are static metadata: they are built and
checked in float64 numpy, once, outside ``jit``. What runs per call (a gather
and a multiply in :func:`resample`) is pure JAX.

A grid uniform in ln(lambda) with step ``dlnlam`` has a constant velocity
width per pixel, ``dv_pix = dlnlam * c``; that is what makes Doppler shifts
(:mod:`jaxspec.physics.doppler`) and velocity-space kernels (rotation, LSF)
fixed-size and jit-static.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.physics.constants import C_KMS

__all__ = [
    "Resampler",
    "check_wavelengths",
    "grid_step",
    "log_lambda_grid",
    "make_resampler",
    "resample",
]

# Relative tolerance on the uniformity of ln(lambda) steps (float64 grids).
_UNIFORM_RTOL = 1e-6


def _positive_finite(value, name: str) -> float:
    """``value`` as a finite positive Python float; static arguments only."""
    try:
        v = float(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError) as err:
        raise ValueError(
            f"{name} must be a concrete (static) number, not a traced value; it sets "
            "array sizes, so pass it as a Python float outside jit"
        ) from err
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number, got {value!r}") from err
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {v}")
    return v


def check_wavelengths(wave, name: str = "wave", *, min_size: int = 1) -> np.ndarray:
    """Validate a wavelength array and return it as float64 numpy.

    Args:
        wave: wavelengths [A], shape (P,). Must be concrete (not a JAX tracer).
        name: the argument name used in error messages.
        min_size: the smallest allowed number of points.

    Returns:
        ``wave`` as a float64 numpy array of shape (P,).

    Raises:
        ValueError: if ``wave`` is not 1-D, has fewer than ``min_size`` points,
            or is not finite, positive and strictly increasing; the message
            names the first offending index.
    """
    try:
        w = np.asarray(wave, dtype=np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError) as err:
        raise ValueError(
            f"{name} must be a concrete array (wavelengths are static metadata); "
            "build grids and resamplers outside jit"
        ) from err
    if w.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {w.shape}")
    if w.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} points, got {w.size}")
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} is not finite (first at index {i}: {w[i]})")
    if (w <= 0).any():
        i = int(np.argmax(w <= 0))
        raise ValueError(f"{name} is not positive (first at index {i}: {w[i]})")
    step_bad = np.diff(w) <= 0
    if step_bad.any():
        i = int(np.argmax(step_bad)) + 1
        raise ValueError(
            f"{name} is not strictly increasing (first at index {i}: {w[i - 1]!r} -> {w[i]!r})"
        )
    return w


def log_lambda_grid(wave_min: float, wave_max: float, pixel_kms: float = 1.0) -> np.ndarray:
    """Vacuum wavelength grid uniform in ln(lambda).

    ``wave[i] = wave_min * exp(i * dlnlam)`` with ``dlnlam = pixel_kms / C_KMS``
    exactly; the first point is ``wave_min`` and the last is the first point
    ``>= wave_max``.

    Args:
        wave_min, wave_max: grid limits [A].
        pixel_kms: velocity width of one pixel [km/s].

    Returns:
        float64 numpy array of shape (P,) [A].

    Raises:
        ValueError: for non-finite or non-positive arguments, or
            ``wave_max <= wave_min``.
    """
    wmin = _positive_finite(wave_min, "wave_min")
    wmax = _positive_finite(wave_max, "wave_max")
    pix = _positive_finite(pixel_kms, "pixel_kms")
    if wmax <= wmin:
        raise ValueError(f"wave_max ({wmax}) must be > wave_min ({wmin})")
    dlnlam = pix / C_KMS
    n = int(math.ceil(math.log(wmax / wmin) / dlnlam - 1e-9)) + 1
    wave = wmin * np.exp(dlnlam * np.arange(n, dtype=np.float64))
    if wave[-1] < wmax:  # guard against rounding in the ceil above
        wave = wmin * np.exp(dlnlam * np.arange(n + 1, dtype=np.float64))
    return wave


def grid_step(wave) -> float:
    """Step ``dlnlam`` of a grid uniform in ln(lambda).

    Args:
        wave: wavelengths [A], shape (P,), P >= 2.

    Returns:
        ``(ln(wave[-1]) - ln(wave[0])) / (P - 1)`` as a Python float.

    Raises:
        ValueError: if ``wave`` fails :func:`check_wavelengths`, or if any
            ln-step differs from the mean by more than 1e-6 relative (plus the
            rounding of the input dtype, for float32 grids).
    """
    w = check_wavelengths(wave, "wave", min_size=2)
    lnw = np.log(w)
    step = (lnw[-1] - lnw[0]) / (w.size - 1)
    in_dtype = np.asarray(wave).dtype
    eps = np.finfo(in_dtype).eps if np.issubdtype(in_dtype, np.floating) else 0.0
    # Each wavelength carries a rounding error of up to eps/2 relative, so
    # each ln-step up to eps: allow that on top of the uniformity tolerance.
    tol = _UNIFORM_RTOL * step + 2.0 * float(eps)
    dev = np.abs(np.diff(lnw) - step)
    if (dev > tol).any():
        i = int(np.argmax(dev))
        raise ValueError(
            f"wave is not uniform in ln(lambda): step {i} differs from the mean "
            f"step {step:.6e} by {dev[i] / step:.2e} (relative; tolerance "
            f"{tol / step:.1e})"
        )
    return float(step)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Resampler:
    """Precomputed linear interpolation from a model grid onto observed wavelengths.

    ``resample(flux)[..., j] = (1 - weight[j]) * flux[..., index[j]]
    + weight[j] * flux[..., index[j] + 1]``: piecewise-linear interpolation in
    wavelength, exactly what ``numpy.interp`` computes. It is not flux
    conserving (no bin averaging); use model grids that are finer than the
    observed pixels.

    Attributes:
        index: int32, shape (P_obs,), left model pixel of each observed pixel,
            in [0, n_model - 2].
        weight: float (the default JAX float dtype), shape (P_obs,), in [0, 1].
        n_model: number of model pixels (static).
    """

    index: jax.Array
    weight: jax.Array
    n_model: int = dataclasses.field(metadata={"static": True})


def make_resampler(model_wave, obs_wave) -> Resampler:
    """Build a :class:`Resampler` from ``model_wave`` onto ``obs_wave`` (float64 numpy).

    Args:
        model_wave: model wavelengths [A], shape (P_model,), P_model >= 2,
            strictly increasing (need not be uniform).
        obs_wave: observed wavelengths [A], shape (P_obs,), strictly
            increasing, all within ``[model_wave[0], model_wave[-1]]``.

    Returns:
        A :class:`Resampler` (a pytree: pass it through ``jit`` / ``vmap``).

    Raises:
        ValueError: if either grid fails :func:`check_wavelengths`, or observed
            wavelengths fall outside the model grid (the message says which
            and by how much).
    """
    mw = check_wavelengths(model_wave, "model_wave", min_size=2)
    ow = check_wavelengths(obs_wave, "obs_wave")
    below = ow < mw[0]
    above = ow > mw[-1]
    if below.any() or above.any():
        parts = []
        if below.any():
            parts.append(
                f"{int(below.sum())} below the model grid start {mw[0]!r} "
                f"(obs_wave[0] = {ow[0]!r}, {mw[0] - ow[0]:.6g} A short)"
            )
        if above.any():
            parts.append(
                f"{int(above.sum())} above the model grid end {mw[-1]!r} "
                f"(obs_wave[-1] = {ow[-1]!r}, {ow[-1] - mw[-1]:.6g} A beyond)"
            )
        raise ValueError("obs_wave lies outside model_wave: " + "; ".join(parts))
    idx = np.clip(np.searchsorted(mw, ow, side="right") - 1, 0, mw.size - 2)
    w = (ow - mw[idx]) / (mw[idx + 1] - mw[idx])
    w = np.clip(w, 0.0, 1.0)
    float_dtype = jnp.zeros(()).dtype  # float32, or float64 under x64
    return Resampler(
        index=jnp.asarray(idx, dtype=jnp.int32),
        weight=jnp.asarray(w, dtype=float_dtype),
        n_model=int(mw.size),
    )


def resample(flux, resampler: Resampler) -> jax.Array:
    """Linearly interpolate ``flux`` from the model grid onto the observed grid.

    Args:
        flux: shape (..., P_model), in any units (interpolation is linear),
            on the resampler's model grid.
        resampler: from :func:`make_resampler`.

    Returns:
        shape (..., P_obs).

    Raises:
        ValueError: if ``flux.shape[-1] != resampler.n_model``.
    """
    flux = jnp.asarray(flux)
    if flux.ndim == 0 or flux.shape[-1] != resampler.n_model:
        raise ValueError(
            f"flux has shape {flux.shape}; its last axis must have the "
            f"{resampler.n_model} pixels of the resampler's model grid"
        )
    return _resample(flux, resampler.index, resampler.weight)


@jax.jit
def _resample(flux, index, weight):
    left = jnp.take(flux, index, axis=-1)
    right = jnp.take(flux, index + 1, axis=-1)
    if jnp.issubdtype(flux.dtype, jnp.inexact):
        weight = weight.astype(flux.dtype)
    return left + weight * (right - left)
