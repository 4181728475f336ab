"""jaxspec: find and measure double-lined spectroscopic binaries with JAX.

Public API (everything else is reachable by module but not promised):

* spectral models: :class:`LineListGenerator` (line-list synthesis on real
  atomic data), :class:`GeneratorParams`, :class:`Emulator` (Flax NNX
  networks; imports The Payne and binspec weights), the
  :class:`SpectralModel` protocol;
* line lists: :class:`LineList`, :func:`builtin_linelist`, :func:`read_vald`,
  :func:`read_moog`, :func:`calibrate_loggf`;
* fitting: :func:`fit_binary` (one spectrum), :func:`fit_single`,
  :func:`fit_binary_batch` (an (N, P) stack), :class:`BinaryFit`,
  :func:`fit_binary_epochs` (several visits of one star, :class:`EpochFit`); the
  binary model :class:`BinaryModel` and its :class:`ParamSpec`;
* posteriors: :func:`sample_binary`, :func:`sample_binary_batch`,
  :class:`BinaryPosterior` (NumPyro NUTS);
* surveys: :func:`run_survey` (resumable, on Dask); readers, the HDF5 stack
  and results tables in :mod:`jaxspec.io`;
* orbits: :func:`mass_ratio` (the Wilson regression), :func:`fit_orbit` and
  :func:`sample_orbit` (Keplerian SB2 orbits) in :mod:`jaxspec.orbit`;
* conventions: :func:`air_to_vacuum`, :func:`vacuum_to_air`;
* physics: the :mod:`jaxspec.physics` module (grids, Doppler, rotation, LSF,
  profiles, continuum, Planck).
"""

from jaxspec import physics
from jaxspec._cache import enable_compilation_cache
from jaxspec._version import __version__
from jaxspec.emulator import Emulator, default_model, train_emulator
from jaxspec.fit import BinaryFit, fit_binary, fit_binary_batch, fit_single
from jaxspec.fit.epochs import EpochFit, fit_binary_epochs
from jaxspec.infer import BinaryPosterior, sample_binary, sample_binary_batch
from jaxspec.linelist import (
    GeneratorParams,
    LineList,
    LineListGenerator,
    builtin_linelist,
    calibrate_loggf,
    read_moog,
    read_vald,
)
from jaxspec.models import BinaryModel, ParamSpec
from jaxspec.orbit import fit_orbit, mass_ratio, sample_orbit
from jaxspec.physics import air_to_vacuum, vacuum_to_air
from jaxspec.spectral_model import SpectralModel
from jaxspec.survey import run_survey

__all__ = [
    "BinaryFit",
    "BinaryModel",
    "BinaryPosterior",
    "Emulator",
    "EpochFit",
    "GeneratorParams",
    "LineList",
    "LineListGenerator",
    "ParamSpec",
    "SpectralModel",
    "__version__",
    "air_to_vacuum",
    "builtin_linelist",
    "enable_compilation_cache",
    "fit_binary",
    "fit_binary_batch",
    "fit_binary_epochs",
    "fit_orbit",
    "mass_ratio",
    "fit_single",
    "calibrate_loggf",
    "default_model",
    "physics",
    "read_moog",
    "read_vald",
    "run_survey",
    "sample_binary",
    "sample_binary_batch",
    "sample_orbit",
    "train_emulator",
    "vacuum_to_air",
]
