"""The bundled default emulator."""

from __future__ import annotations

import functools
import importlib.resources

__all__ = ["default_model"]

_FILE = "default_emulator.h5"


@functools.cache
def default_model():
    """The bundled default emulator (loaded once and cached).

    A Flax MLP (3 -> 256 -> 256 -> 256 -> 7766, SiLU) trained on the line-list
    generator with the built-in calibrated list (``scripts/train_default_emulator.py``):

    * band 4950-5350 A (vacuum), 7,766 pixels of 3 km/s, uniform in ln(lambda),
      fine enough to be convolved to any resolving power R <= 30,000;
    * labels ``("teff", "logg", "feh")`` over teff 4000-7500 K, logg 1.0-5.0,
      feh -2.0..+0.5 (its ``label_bounds``);
    * held-out accuracy against the generator: rms 4.9e-4 in normalized flux
      on 1,024 uniformly drawn labels (``benchmarks/bench_default_emulator.py``).

    Returns:
        :class:`jaxspec.Emulator`.
    """
    from jaxspec.emulator.emulator import Emulator

    resource = importlib.resources.files("jaxspec").joinpath("data", _FILE)
    with importlib.resources.as_file(resource) as path:
        return Emulator.load(path)
