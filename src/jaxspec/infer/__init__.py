"""Posteriors of SB2 parameters with NumPyro's NUTS.

* :func:`sample_binary` (one spectrum) and :func:`sample_binary_batch` (an
  (N, P) stack in one compiled program) return :class:`BinaryPosterior`;
* the posterior density: :func:`make_prior` (uniform over the model's
  parameter box, overridable), :func:`log_likelihood` (the fitter's
  chi-square with the continuum integrated out or profiled),
  :func:`numpyro_model` (the same as a NumPyro model);
* diagnostics: :func:`rhat`, :func:`ess_bulk`, :func:`ess_tail`.
"""

from jaxspec.infer.diagnostics import ess_bulk, ess_tail, rhat
from jaxspec.infer.model import Prior, log_likelihood, make_prior, numpyro_model
from jaxspec.infer.posterior import FLAGS, BinaryPosterior
from jaxspec.infer.sample import sample_binary, sample_binary_batch

__all__ = [
    "FLAGS",
    "BinaryPosterior",
    "Prior",
    "ess_bulk",
    "ess_tail",
    "log_likelihood",
    "make_prior",
    "numpyro_model",
    "rhat",
    "sample_binary",
    "sample_binary_batch",
]
