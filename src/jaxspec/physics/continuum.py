"""Chebyshev polynomials for continuum (or flux-calibration) corrections.

A continuum ``sum_k c_k T_k(x)`` with ``x`` the wavelength mapped linearly
onto [-1, 1] is well conditioned at any degree, unlike a power series in
wavelength. Two ways in:

- :func:`chebyshev_design` builds the (P, degree + 1) design matrix once, for
  linear least squares or a per-call matrix-vector product;
- :func:`chebyshev_eval` evaluates coefficients directly (Clenshaw), for
  batched coefficients.

Both follow ``numpy.polynomial.chebyshev`` (``chebvander`` and ``chebval``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["chebyshev_design", "chebyshev_eval", "chebyshev_x"]


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray | np.generic | float | int | list | tuple)


def chebyshev_x(wave, wave_min=None, wave_max=None):
    """Map wavelengths linearly so that [wave_min, wave_max] becomes [-1, 1].

    Args:
        wave: wavelengths [A], any shape.
        wave_min, wave_max: the interval [A]; default the min / max of ``wave``.

    Returns:
        ``2 (wave - wave_min) / (wave_max - wave_min) - 1``, same shape; float64
        numpy for numpy input, JAX otherwise.

    Raises:
        ValueError: if concrete limits have ``wave_max <= wave_min``.
    """
    xp = np if _is_numpy(wave) else jnp
    w = np.asarray(wave, dtype=np.float64) if xp is np else jnp.asarray(wave)
    lo = xp.min(w) if wave_min is None else wave_min
    hi = xp.max(w) if wave_max is None else wave_max
    if not isinstance(lo, jax.core.Tracer) and not isinstance(hi, jax.core.Tracer):
        if not float(hi) > float(lo):
            raise ValueError(
                f"wave_max ({float(hi)}) must be > wave_min ({float(lo)}); "
                "pass the limits explicitly for a single wavelength"
            )
    return 2.0 * (w - lo) / (hi - lo) - 1.0


def chebyshev_design(wave, degree: int, wave_min=None, wave_max=None):
    """Chebyshev design matrix ``A[..., p, k] = T_k(x_p)`` on mapped wavelengths.

    Args:
        wave: wavelengths [A], shape (..., P) (usually (P,)).
        degree: highest polynomial degree (static int >= 0).
        wave_min, wave_max: the interval mapped to [-1, 1] [A]; default the
            range of ``wave``. Fix them when the same continuum must apply to
            several wavelength sets.

    Returns:
        shape (..., P, degree + 1); float64 numpy for numpy input, JAX
        otherwise. Equals ``numpy.polynomial.chebyshev.chebvander(x, degree)``.

    Raises:
        ValueError: for a negative or non-integer degree, or bad limits.
    """
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 0:
        raise ValueError(f"degree must be a non-negative int, got {degree!r}")
    xp = np if _is_numpy(wave) else jnp
    x = chebyshev_x(wave, wave_min, wave_max)
    cols = [xp.ones_like(x)]
    if degree >= 1:
        cols.append(x)
    for _ in range(2, int(degree) + 1):
        cols.append(2.0 * x * cols[-1] - cols[-2])
    return xp.stack(cols, axis=-1)


@jax.jit
def chebyshev_eval(coeffs, x) -> jax.Array:
    """Evaluate ``sum_k coeffs[..., k] T_k(x)`` by Clenshaw's recurrence.

    Args:
        coeffs: shape (..., degree + 1), lowest degree first (may be batched,
            e.g. one set per spectrum).
        x: points in [-1, 1] (e.g. from :func:`chebyshev_x`), shape (P,).

    Returns:
        shape (..., P): as ``numpy.polynomial.chebyshev.chebval(x, c)`` for
        each coefficient set.

    Raises:
        ValueError: if ``coeffs`` is 0-d or empty.
    """
    coeffs = jnp.asarray(coeffs)
    x = jnp.asarray(x)
    if coeffs.ndim == 0 or coeffs.shape[-1] == 0:
        raise ValueError(f"coeffs must have shape (..., degree + 1), got {coeffs.shape}")
    n = coeffs.shape[-1]
    c = coeffs[..., None, :]  # (..., 1, n) broadcasts against x (P,)
    b1 = jnp.zeros(jnp.broadcast_shapes(c.shape[:-1], x.shape), jnp.result_type(c, x))
    b2 = b1
    for k in range(n - 1, 0, -1):
        b1, b2 = c[..., k] + 2.0 * x * b1 - b2, b1
    return c[..., 0] + x * b1 - b2
