"""Dense numpy reference of the generator's flux formula (for tests and benchmarks).

Evaluates every line on every pixel in float64 numpy, with the profile
formulas written out independently of the JAX code (TCH pseudo-Voigt;
hydrogen: TCH mix of a Gaussian and Holtsmark-like wings
``1 / (1 + |x/hw|^{5/2})``), and applies the generator's residual-flux
formula. Slow (seconds per spectrum): it is the yardstick for the sparse
block evaluation, not a model to fit with.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["tch_profile", "hydrogen_profile", "residual_flux", "dense_eta"]

_HOLTSMARK_NORM = 2.0 * (math.pi / 2.5) / math.sin(math.pi / 2.5)  # int dx / (1 + |x|^2.5)


def _tch_width_mix(sigma, gamma):
    fg, fl = 2.0 * math.sqrt(2.0 * math.log(2.0)) * sigma, 2.0 * gamma
    f = (
        fg**5 + 2.69269 * fg**4 * fl + 2.42843 * fg**3 * fl**2
        + 4.47163 * fg**2 * fl**3 + 0.07842 * fg * fl**4 + fl**5
    ) ** 0.2
    r = fl / f
    return 0.5 * f, 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3


def _gauss_hwhm(x, hw):
    return math.sqrt(math.log(2.0) / math.pi) / hw * np.exp(-math.log(2.0) * (x / hw) ** 2)


def tch_profile(x, sigma, gamma):
    """Area-normalized TCH pseudo-Voigt (sigma: Gaussian sd, gamma: Lorentz HWHM), numpy."""
    hw, mix = _tch_width_mix(sigma, gamma)
    lorentz = hw / math.pi / (x * x + hw * hw)
    return mix * lorentz + (1.0 - mix) * _gauss_hwhm(x, hw)


def hydrogen_profile(x, sigma, w):
    """The generator's hydrogen profile (w: Stark half width), numpy."""
    hw, mix = _tch_width_mix(sigma, w)
    holts = 1.0 / (_HOLTSMARK_NORM * hw * (1.0 + np.abs(x / hw) ** 2.5))
    return mix * holts + (1.0 - mix) * _gauss_hwhm(x, hw)


def residual_flux(eta, params):
    """Milne-Eddington residual flux plus the strong-line core term of ``GeneratorParams``."""
    d_max = float(params.d_max)
    d_core = float(params.core_frac) * (1.0 - d_max)
    return 1.0 - d_max * eta / (1.0 + eta) - d_core * eta / (10.0 ** float(params.log_eta_core) + eta)


def dense_eta(
    n_pix, pos, hydrogen, strength, sigma, gamma, *, dtype=np.float64, chunk=256, profile=None
):
    """Sum over all lines of strength x profile on pixels 0..n_pix-1 (all in pixel units).

    ``profile(x, sigma, gamma)`` replaces the TCH pseudo-Voigt of metal lines
    (for example ``scipy.special.voigt_profile``, the exact Voigt).
    """
    profile = tch_profile if profile is None else profile
    pix = np.arange(n_pix, dtype=dtype)
    pos = np.asarray(pos, dtype)
    hyd = np.asarray(hydrogen, bool)
    s, sg, g = (np.asarray(a, dtype) for a in (strength, sigma, gamma))
    eta = np.zeros(n_pix, dtype)
    for i in range(0, pos.size, chunk):
        sl = slice(i, i + chunk)
        x = pix[None, :] - pos[sl, None]
        prof = profile(x, sg[sl, None], g[sl, None])
        if hyd[sl].any():
            h = np.flatnonzero(hyd[sl])
            prof[h] = hydrogen_profile(x[h], sg[sl][h, None], g[sl][h, None])
        eta += np.sum(s[sl, None] * prof, axis=0)
    return eta
