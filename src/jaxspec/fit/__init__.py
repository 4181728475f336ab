"""Gradient fitting: a batched Levenberg-Marquardt solver (fit_binary is built on it)."""

from jaxspec.fit.continuum import continuum_design, find_segments, solve_continuum
from jaxspec.fit.lm import LMResult, levenberg_marquardt
from jaxspec.fit.todcor import TodcorResult, best_peaks, todcor

__all__ = [
    "LMResult",
    "TodcorResult",
    "best_peaks",
    "continuum_design",
    "find_segments",
    "levenberg_marquardt",
    "solve_continuum",
    "todcor",
]
