"""Gradient fitting: a batched Levenberg-Marquardt solver (fit_binary is built on it)."""

from jaxspec.fit.lm import LMResult, levenberg_marquardt

__all__ = ["LMResult", "levenberg_marquardt"]
