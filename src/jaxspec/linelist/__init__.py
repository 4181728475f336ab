"""Line lists, LTE line-formation physics and the line-list spectral generator."""

from jaxspec.linelist.builtin import builtin_linelist
from jaxspec.linelist.calibrate import CalibrationResult, calibrate_loggf, fit_velocity
from jaxspec.linelist.generator import DEFAULT_LABEL_BOUNDS, LineListGenerator
from jaxspec.linelist.io import read_moog, read_vald
from jaxspec.linelist.linelist import LineList, species_name
from jaxspec.linelist.strength import GeneratorParams, max_log_strength

__all__ = [
    "DEFAULT_LABEL_BOUNDS",
    "CalibrationResult",
    "GeneratorParams",
    "LineList",
    "LineListGenerator",
    "builtin_linelist",
    "calibrate_loggf",
    "fit_velocity",
    "max_log_strength",
    "read_moog",
    "read_vald",
    "species_name",
]
