"""The neural spectral emulator (The Payne style): labels -> normalized spectrum.

:class:`Emulator` wraps a Flax NNX network (:mod:`jaxspec.emulator.networks`)
and satisfies :class:`jaxspec.spectral_model.SpectralModel`; files are read
and written by :mod:`jaxspec.emulator.io`.
"""

from jaxspec.emulator.default import default_model
from jaxspec.emulator.emulator import RANGE_POLICIES, Emulator
from jaxspec.emulator.networks import MLP, PerPixelNet
from jaxspec.emulator.phoenix import load_phoenix_grid
from jaxspec.emulator.train import (
    TrainingReport,
    emulator_from_generator,
    make_training_set,
    read_grid,
    sample_labels,
    train_emulator,
    write_grid,
)

__all__ = [
    "MLP",
    "RANGE_POLICIES",
    "Emulator",
    "PerPixelNet",
    "TrainingReport",
    "default_model",
    "emulator_from_generator",
    "load_phoenix_grid",
    "make_training_set",
    "read_grid",
    "sample_labels",
    "train_emulator",
    "write_grid",
]
