"""Gradient fitting: fit_binary / fit_single / fit_binary_batch, and the LM, continuum and TODCOR pieces."""

from jaxspec.fit.binary import (
    BIC_THRESHOLD,
    MODE_DELTA_CHI2,
    TEMPLATE_VSINI,
    fit_binary,
    fit_binary_batch,
    fit_single,
    local_fits,
    prepare_spectrum,
)
from jaxspec.fit.epochs import EPOCH_FLAGS, EpochFit, fit_binary_epochs
from jaxspec.fit.continuum import continuum_design, find_segments, solve_continuum
from jaxspec.fit.lm import LMResult, levenberg_marquardt
from jaxspec.fit.result import FLAGS, WARNINGS, BinaryFit, flag_messages
from jaxspec.fit.todcor import TodcorResult, best_peaks, todcor, todcor_cross

__all__ = [
    "BIC_THRESHOLD",
    "BinaryFit",
    "EPOCH_FLAGS",
    "EpochFit",
    "fit_binary_epochs",
    "FLAGS",
    "LMResult",
    "MODE_DELTA_CHI2",
    "TEMPLATE_VSINI",
    "WARNINGS",
    "local_fits",
    "fit_binary",
    "fit_binary_batch",
    "fit_single",
    "flag_messages",
    "prepare_spectrum",
    "TodcorResult",
    "best_peaks",
    "continuum_design",
    "find_segments",
    "levenberg_marquardt",
    "solve_continuum",
    "todcor",
    "todcor_cross",
]
