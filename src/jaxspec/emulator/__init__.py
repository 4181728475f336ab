"""The neural spectral emulator (The Payne style): labels -> normalized spectrum.

:class:`Emulator` wraps a Flax NNX network (:mod:`jaxspec.emulator.networks`)
and satisfies :class:`jaxspec.spectral_model.SpectralModel`; files are read
and written by :mod:`jaxspec.emulator.io`.
"""

from jaxspec.emulator.emulator import RANGE_POLICIES, Emulator
from jaxspec.emulator.networks import MLP, PerPixelNet

__all__ = ["Emulator", "MLP", "PerPixelNet", "RANGE_POLICIES"]
