"""Amortized inference: both stars of a binary, and the SB2 call, from one network pass.

A Flax NNX 1-D convolutional network (:class:`AmortizedNet`) maps one spectrum on its
grid to both stars' labels, radial velocities, vsini and the light share, each with a
Gaussian spread, plus a binary probability. It is trained (:func:`train_amortized`, optax)
on binaries and single stars simulated with the bundled emulator
(:func:`simulate_training_set`), with a loss indifferent to the order of the two stars and
every target scaled to unit range. :class:`AmortizedPredictor` resamples and normalizes any
spectrum and predicts; :func:`detect_binary` calls SB2s at a false-positive rate measured
on held-out single stars.
"""

from jaxspec.amortized.net import TARGETS, AmortizedNet, order_free_nll, swap_stars
from jaxspec.amortized.predictor import (
    AMORTIZED_VERSION,
    AmortizedPredictor,
    TrainReport,
    calibrate_spread,
    default_predictor,
    detect_binary,
    network_grid,
    normalize_continuum,
    simulate_training_set,
    train_amortized,
)

__all__ = [
    "AMORTIZED_VERSION",
    "TARGETS",
    "AmortizedNet",
    "AmortizedPredictor",
    "TrainReport",
    "calibrate_spread",
    "default_predictor",
    "detect_binary",
    "network_grid",
    "normalize_continuum",
    "order_free_nll",
    "simulate_training_set",
    "swap_stars",
    "train_amortized",
]
