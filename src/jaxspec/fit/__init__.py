"""Gradient fitting: fit_binary, and the Levenberg-Marquardt, continuum and TODCOR pieces under it."""

from jaxspec.fit.binary import BIC_THRESHOLD, BinaryFit, fit_binary
from jaxspec.fit.continuum import continuum_design, find_segments, solve_continuum
from jaxspec.fit.lm import LMResult, levenberg_marquardt
from jaxspec.fit.todcor import TodcorResult, best_peaks, todcor

__all__ = [
    "BIC_THRESHOLD",
    "BinaryFit",
    "LMResult",
    "fit_binary",
    "TodcorResult",
    "best_peaks",
    "continuum_design",
    "find_segments",
    "levenberg_marquardt",
    "solve_continuum",
    "todcor",
]
