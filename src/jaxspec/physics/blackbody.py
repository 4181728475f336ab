"""Planck function per unit wavelength, safe in float32.

Used for the continuum flux ratio of two stars (the ratio of their blackbody
surface brightnesses at a wavelength, times the ratio of their areas).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxspec.physics.constants import C_CGS, H_CGS, K_CGS

__all__ = ["planck"]

# B_lambda [erg s^-1 cm^-2 A^-1 sr^-1] = _C1 / lambda[A]^5 / (exp(_C2 / (lambda[A] T)) - 1)
_C1 = 2.0 * H_CGS * C_CGS**2 * 1e32  # 2 h c^2, cm^2 -> A^2 and per cm -> per A: 1e40 * 1e-8
_C2 = H_CGS * C_CGS / K_CGS * 1e8  # h c / k [A K]
_LN_C1 = math.log(_C1)


@jax.jit
def planck(wave, teff) -> jax.Array:
    """Planck surface brightness per unit wavelength.

    ``B_lambda = 2 h c^2 / lambda^5 / (exp(h c / (lambda k T)) - 1)``, computed
    as ``exp(ln(2 h c^2) - 5 ln(lambda) - u) / (-expm1(-u))`` with
    ``u = h c / (lambda k T)``, so that nothing overflows in float32 (not even
    lambda^5 or exp(u) for u up to ~100 and beyond) and the Rayleigh-Jeans
    limit (small u) keeps full precision.

    Args:
        wave: wavelength [A] (vacuum), > 0, any shape.
        teff: temperature [K], > 0, broadcastable with ``wave`` (e.g.
            ``teff[:, None]`` against ``wave[None, :]``).

    Returns:
        B_lambda [erg s^-1 cm^-2 A^-1 sr^-1], shape ``broadcast(wave, teff)``.
        Values below the float32 range (u >~ 150 in the optical) underflow
        to 0.
    """
    dtype = jnp.result_type(wave, teff, jnp.zeros(()).dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.zeros(()).dtype
    wave = jnp.asarray(wave, dtype)
    teff = jnp.asarray(teff, dtype)
    u = _C2 / (wave * teff)
    return jnp.exp(_LN_C1 - 5.0 * jnp.log(wave) - u) / (-jnp.expm1(-u))
