"""Pure spectral physics on arrays: grids, Doppler shift, broadening, profiles, continuum.

Conventions: wavelengths in Angstrom (vacuum), velocities in km/s, positive
RV = receding (redshift). Functions that act on spectra take a grid uniform in
ln(lambda) through its step ``dlnlam`` (a static Python float, see
:func:`grid_step`); kernel sizes depend only on static arguments, so ``jit``
does not recompile when a velocity, vsini or resolution changes.

The numerical cores are wrapped in ``jax.jit`` (sizes static) after their
argument checks: called eagerly they then compile once per shape instead of
once per primitive (~5x faster first calls); under a caller's ``jit`` they
inline, so the caller still decides what is compiled together.
"""

from jaxspec.physics.airvac import air_to_vacuum, refractive_index_air, vacuum_to_air
from jaxspec.physics.blackbody import planck
from jaxspec.physics.continuum import chebyshev_design, chebyshev_eval, chebyshev_x
from jaxspec.physics.convolve import convolve_same
from jaxspec.physics.doppler import (
    doppler_factor,
    doppler_shift,
    doppler_shift_wave,
    shift_pixels,
)
from jaxspec.physics.grid import (
    Resampler,
    check_wavelengths,
    grid_step,
    log_lambda_grid,
    make_resampler,
    resample,
)
from jaxspec.physics.lsf import (
    FWHM_TO_SIGMA,
    apply_lsf,
    apply_lsf_variable,
    gaussian_broadening,
    gaussian_kernel,
    resolution_on_grid,
)
from jaxspec.physics.rotation import rotation_kernel, rotational_broadening
from jaxspec.physics.voigt import (
    faddeeva,
    pseudo_voigt,
    pseudo_voigt_params,
    voigt_exact,
    voigt_hjerting,
)

__all__ = [
    "FWHM_TO_SIGMA",
    "Resampler",
    "air_to_vacuum",
    "apply_lsf",
    "apply_lsf_variable",
    "chebyshev_design",
    "chebyshev_eval",
    "chebyshev_x",
    "check_wavelengths",
    "convolve_same",
    "doppler_factor",
    "doppler_shift",
    "doppler_shift_wave",
    "faddeeva",
    "gaussian_broadening",
    "gaussian_kernel",
    "grid_step",
    "log_lambda_grid",
    "make_resampler",
    "pseudo_voigt",
    "pseudo_voigt_params",
    "planck",
    "refractive_index_air",
    "resample",
    "resolution_on_grid",
    "rotation_kernel",
    "rotational_broadening",
    "shift_pixels",
    "vacuum_to_air",
    "voigt_exact",
    "voigt_hjerting",
]
