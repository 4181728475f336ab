"""From a rest-frame model spectrum to what an instrument records.

``observe`` chains the observation effects in their physical order:
rotation (vsini), the instrument's Gaussian line-spread function, the Doppler
shift, and resampling onto the observed pixels. It is a pure function of
arrays, so it is used unchanged by the solar comparison, the calibration and
the binary model.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxspec.physics.doppler import doppler_shift
from jaxspec.physics.grid import Resampler, resample
from jaxspec.physics.lsf import apply_lsf
from jaxspec.physics.rotation import rotational_broadening

__all__ = ["observe"]


def observe(
    flux,
    dlnlam: float,
    resampler: Resampler | None = None,
    *,
    rv=0.0,
    vsini=None,
    resolution=None,
    epsilon: float = 0.6,
    vsini_max: float = 300.0,
    min_resolution: float = 2000.0,
):
    """Apply rotation, LSF, Doppler shift and resampling to a model spectrum.

    Args:
        flux: (..., n_model) normalized flux on a uniform ln(lambda) grid.
        dlnlam: grid step in ln(lambda) (static).
        resampler: onto the observed pixels; ``None`` keeps the model grid.
        rv: radial velocity [km/s], positive = receding.
        vsini: projected rotation [km/s]; ``None`` skips rotation.
        resolution: resolving power lambda / FWHM; ``None`` skips the LSF.
        epsilon: linear limb-darkening coefficient of the rotation kernel.
        vsini_max, min_resolution: static limits that fix the kernel sizes.

    Returns:
        (..., n_obs) flux on the observed pixels (or (..., n_model)).
    """
    out = jnp.asarray(flux)
    if vsini is not None:
        out = rotational_broadening(out, vsini, dlnlam, epsilon=epsilon, vsini_max=vsini_max)
    if resolution is not None:
        out = apply_lsf(out, resolution, dlnlam, min_resolution=min_resolution)
    out = doppler_shift(out, rv, dlnlam)
    if resampler is not None:
        out = resample(out, resampler)
    return out
