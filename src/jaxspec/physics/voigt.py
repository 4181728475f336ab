"""Voigt line profiles: the fast Thompson-Cox-Hastings pseudo-Voigt and an exact Voigt.

Convention (as ``scipy.special.voigt_profile(x, sigma, gamma)``): ``sigma`` is
the standard deviation of the Gaussian, ``gamma`` the half width at half
maximum of the Lorentzian, and the profiles are area-normalized in ``x``
(any unit: km/s, A, ... as long as x, sigma and gamma share it).

- :func:`pseudo_voigt` (Thompson, Cox & Hastings 1987, J. Appl. Cryst. 20, 79):
  a weighted sum of a Gaussian and a Lorentzian of one common FWHM. Accurate
  to about 1% of the peak; cheap and smooth. Use it inside models.
- :func:`voigt_exact`, :func:`voigt_hjerting`, :func:`faddeeva`: the real
  part of the Faddeeva function w(z) by Weideman's (1994, SIAM J. Numer.
  Anal. 31, 1497) rational expansion with N = 32 terms: measured against
  ``scipy.special.wofz`` to ~4e-14 in float64 and ~3e-7 (float32 rounding)
  in float32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["faddeeva", "pseudo_voigt", "voigt_exact", "voigt_hjerting"]

_SQRT_2LN2 = math.sqrt(2.0 * math.log(2.0))
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SQRT_LN2_PI = math.sqrt(math.log(2.0) / math.pi)


def _float_dtype(*xs):
    dtype = jnp.result_type(*xs, jnp.zeros(()).dtype)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.zeros(()).dtype


def pseudo_voigt_params(sigma, gamma):
    """Half width at half maximum and Lorentzian fraction of the TCH pseudo-Voigt.

    Args:
        sigma: Gaussian standard deviation (>= 0).
        gamma: Lorentzian HWHM (>= 0); not both zero.

    Returns:
        ``(hw, eta)``: the profile is ``eta L(x; hw) + (1 - eta) G(x; hw)`` with
        unit-area Lorentzian and Gaussian of common half width ``hw``. Computing
        them once per line lets callers evaluate many pixels cheaply.
    """
    dtype = _float_dtype(sigma, gamma)
    f_g = (2.0 * _SQRT_2LN2) * jnp.asarray(sigma, dtype)
    f_l = 2.0 * jnp.asarray(gamma, dtype)
    # Scale the polynomial by s = f_G + f_L so its fifth powers cannot overflow
    # in float32 for any width unit.
    s = f_g + f_l
    g = f_g / s
    lo = f_l / s
    poly = (
        g**5
        + 2.69269 * g**4 * lo
        + 2.42843 * g**3 * lo**2
        + 4.47163 * g**2 * lo**3
        + 0.07842 * g * lo**4
        + lo**5
    )
    f = s * poly**0.2
    r = f_l / f
    eta = r * (1.36603 + r * (-0.47719 + r * 0.11116))
    return 0.5 * f, eta


@jax.jit
def pseudo_voigt(x, sigma, gamma) -> jax.Array:
    """Thompson-Cox-Hastings pseudo-Voigt profile, area-normalized.

    With ``f_G = 2 sqrt(2 ln 2) sigma`` and ``f_L = 2 gamma``, the total FWHM is

        f = (f_G^5 + 2.69269 f_G^4 f_L + 2.42843 f_G^3 f_L^2 + 4.47163 f_G^2 f_L^3
             + 0.07842 f_G f_L^4 + f_L^5)^(1/5),

    ``eta = 1.36603 r - 0.47719 r^2 + 0.11116 r^3`` with ``r = f_L / f``, and the
    profile is ``eta L(x; f) + (1 - eta) G(x; f)``, L and G a Lorentzian and a
    Gaussian of FWHM f, each of unit area. Its error against the exact Voigt
    is at most ~1.2% of the peak (largest for gamma ~ sigma).

    Args:
        x: offset from line centre, any shape.
        sigma: Gaussian standard deviation (>= 0), broadcastable with x.
        gamma: Lorentzian HWHM (>= 0), broadcastable with x. sigma and gamma
            may each be 0 (with a finite gradient), not both.

    Returns:
        profile [1 / unit of x], shape ``broadcast(x, sigma, gamma)``.
    """
    dtype = _float_dtype(x, sigma, gamma)
    x = jnp.asarray(x, dtype)
    hw, eta = pseudo_voigt_params(sigma, gamma)
    lorentz = (hw / math.pi) / (x * x + hw * hw)
    u = x / hw
    gauss = (_SQRT_LN2_PI / hw) * jnp.exp(-math.log(2.0) * u * u)
    return eta * lorentz + (1.0 - eta) * gauss


def _weideman_coefficients(n: int = 32) -> tuple[float, np.ndarray]:
    """Weideman (1994) expansion: w(z) ~ 2 p(Z) / (L - iz)^2 + 1 / (sqrt(pi) (L - iz))."""
    m = 2 * n
    m2 = 2 * m
    k = np.arange(-m + 1, m)
    big_l = math.sqrt(n / math.sqrt(2.0))
    theta = k * math.pi / m
    t = big_l * np.tan(theta / 2.0)
    f = np.concatenate([[0.0], np.exp(-(t**2)) * (big_l**2 + t**2)])
    a = np.real(np.fft.fft(np.fft.fftshift(f))) / m2
    a = a[1 : n + 1][::-1]  # highest power first, for Horner
    return big_l, a


_WEIDEMAN_L, _WEIDEMAN_A = _weideman_coefficients(32)


@jax.jit
def faddeeva(z) -> jax.Array:
    """Faddeeva function w(z) = exp(-z^2) erfc(-iz) for Im z >= 0 (Weideman 1994, N = 32).

    Args:
        z: complex array, any shape, with ``Im z >= 0`` (the expansion is not
            valid below the real axis; that half-plane is not needed for
            line profiles).

    Returns:
        w(z), complex, same shape (complex64, or complex128 under x64 /
        for complex128 input).
    """
    z = jnp.asarray(z)
    if not jnp.issubdtype(z.dtype, jnp.complexfloating):
        z = z.astype(jnp.result_type(z.dtype, jnp.complex64))
    rdt = jnp.zeros((), z.dtype).real.dtype
    big_l = jnp.asarray(_WEIDEMAN_L, rdt)
    lmiz = big_l - 1j * z
    zz = (big_l + 1j * z) / lmiz
    p = jnp.zeros_like(z)
    for coeff in _WEIDEMAN_A:
        p = p * zz + jnp.asarray(coeff, rdt)
    return 2.0 * p / (lmiz * lmiz) + (1.0 / math.sqrt(math.pi)) / lmiz


@jax.jit
def voigt_hjerting(a, u) -> jax.Array:
    """Voigt-Hjerting function H(a, u) = Re w(u + i a).

    ``H(a, u) / sqrt(pi)`` is the Voigt profile per unit ``u`` for Doppler
    width 1 (``u = x / (sqrt 2 sigma)``, ``a = gamma / (sqrt 2 sigma)``).

    Args:
        a: damping parameter (>= 0), broadcastable with u.
        u: frequency offset in Doppler widths, any shape.

    Returns:
        H(a, u), real, shape ``broadcast(a, u)``.
    """
    dtype = _float_dtype(a, u)
    a = jnp.asarray(a, dtype)
    u = jnp.asarray(u, dtype)
    return jnp.real(faddeeva(jax.lax.complex(u, a)))


@jax.jit
def voigt_exact(x, sigma, gamma) -> jax.Array:
    """Voigt profile, same convention as ``scipy.special.voigt_profile``.

    ``V(x) = Re w((x + i gamma) / (sqrt 2 sigma)) / (sqrt(2 pi) sigma)``; for
    ``sigma = 0`` it is the Lorentzian of HWHM gamma (selected safely, so the
    gradient stays finite).

    Args:
        x: offset from line centre, any shape.
        sigma: Gaussian standard deviation (>= 0), broadcastable with x.
        gamma: Lorentzian HWHM (>= 0), broadcastable with x; not both 0.

    Returns:
        profile [1 / unit of x], shape ``broadcast(x, sigma, gamma)``.
    """
    dtype = _float_dtype(x, sigma, gamma)
    x = jnp.asarray(x, dtype)
    sigma = jnp.asarray(sigma, dtype)
    gamma = jnp.asarray(gamma, dtype)
    has_sigma = sigma > 0
    sigma_safe = jnp.where(has_sigma, sigma, 1.0)
    scale = math.sqrt(2.0) * sigma_safe
    voigt = voigt_hjerting(gamma / scale, x / scale) / (_SQRT_2PI * sigma_safe)
    gamma_safe = jnp.where(gamma > 0, gamma, 1.0)
    lorentz = (gamma_safe / math.pi) / (x * x + gamma_safe * gamma_safe)
    return jnp.where(has_sigma, voigt, lorentz)
