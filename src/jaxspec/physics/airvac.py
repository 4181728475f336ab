"""Air <-> vacuum wavelength conversion, one formula for the whole library.

We use the IAU standard (Morton 2000, ApJS 130, 403, eq. 8, from Birch & Downs
1994), the same relation VALD uses:

    n - 1 = 8.34254e-5 + 2.406147e-2 / (130 - s^2) + 1.5998e-4 / (38.9 - s^2),
    s = 1e4 / lambda_vac  [1/micron],   lambda_air = lambda_vac / n.

The inverse is solved with three fixed-point iterations, which round-trips to
better than 1e-9 A over 2000-25000 A. Valid above 2000 A (vacuum); below it
air and vacuum wavelengths are taken as equal, as is customary.

Both functions accept numpy arrays (computed in float64, the recommended type
for wavelengths, which are static metadata in jaxspec) or jax arrays (computed
in the array's own dtype).
"""

from __future__ import annotations

import numpy as np

__all__ = ["air_to_vacuum", "vacuum_to_air", "refractive_index_air"]


def _xp(x):
    if isinstance(x, np.ndarray | float | int | list | tuple):
        return np, np.asarray(x, dtype=np.float64)
    import jax.numpy as jnp

    return jnp, jnp.asarray(x)


def refractive_index_air(wave_vac):
    """Refractive index of standard air at vacuum wavelength ``wave_vac`` [A].

    Args:
        wave_vac: vacuum wavelengths [A], any shape (a number, (P,), (N, P)...).

    Returns:
        n, the same shape (1 at and below 2000 A).
    """
    xp, w = _xp(wave_vac)
    s2 = (1e4 / w) ** 2
    n = 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)
    return xp.where(w > 2000.0, n, 1.0)


def vacuum_to_air(wave_vac):
    """Convert vacuum wavelengths [A] to air wavelengths [A] (IAU/Morton 2000).

    Args:
        wave_vac: vacuum wavelengths [A], any shape (a number, (P,), (N, P)...).

    Returns:
        Air wavelengths [A], the same shape (equal to ``wave_vac`` at and
        below 2000 A).
    """
    xp, w = _xp(wave_vac)
    return w / refractive_index_air(w)


def air_to_vacuum(wave_air):
    """Convert air wavelengths [A] to vacuum wavelengths [A] (inverse of :func:`vacuum_to_air`).

    Args:
        wave_air: air wavelengths [A], any shape (a number, (P,), (N, P)...).

    Returns:
        Vacuum wavelengths [A], the same shape (three fixed-point iterations:
        round trip better than 1e-9 A over 2000-25000 A).
    """
    xp, w = _xp(wave_air)
    vac = w
    for _ in range(3):
        vac = w * refractive_index_air(vac)
    return vac
