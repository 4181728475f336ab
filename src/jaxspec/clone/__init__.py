"""Grid cloning: any synthetic grid turned into a continuous, differentiable line-list model.

Each spectrum of a rectilinear grid (the HDF5 grid schema of
:func:`jaxspec.emulator.train.write_grid`, or PHOENIX HiRes through
:func:`jaxspec.emulator.load_phoenix_grid`) is represented as a list of pseudo-Voigt
lines whose centres, amplitudes and Gaussian and Lorentzian widths are fitted by
gradient descent (optax, one jitted and vmapped program over the grid); lines are
matched across grid points by their starting centres, and each line's parameters are
interpolated over the labels. The result, :class:`ClonedModel`, is a spectral model like
the generator and the emulator: ``fit_binary(flux, wave, model=clone)`` works.

* :func:`clone_grid`, :func:`clone_phoenix` build a clone (:class:`CloneReport` says how
  well it reproduces the grid);
* :func:`save_clone`, :func:`load_clone` write and read it as HDF5 (no pickle; the file
  carries :data:`CLONE_VERSION` and other versions are refused);
* :func:`detect_lines`, :func:`check_rectilinear` are the building blocks.
"""

from jaxspec.clone.build import CloneReport, check_rectilinear, clone_grid, clone_phoenix, detect_lines
from jaxspec.clone.model import CLONE_VERSION, ClonedModel, load_clone, save_clone

__all__ = [
    "CLONE_VERSION",
    "CloneReport",
    "ClonedModel",
    "check_rectilinear",
    "clone_grid",
    "clone_phoenix",
    "detect_lines",
    "load_clone",
    "save_clone",
]
