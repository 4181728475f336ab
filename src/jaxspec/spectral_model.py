"""The small interface every spectral model satisfies.

A spectral model maps one vector of stellar labels to a continuum-normalized,
rest-frame spectrum on its own model wavelength grid. Both the line-list
generator (:class:`jaxspec.LineListGenerator`) and the neural emulator
implement it, so the binary model and the fitters work with either.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["SpectralModel", "check_labels"]


@runtime_checkable
class SpectralModel(Protocol):
    """Protocol of a spectral model.

    A class satisfies it with a ``label_names`` attribute, ``label_bounds`` and
    ``wave`` attributes or properties, and a ``flux(labels)`` method.

    Attributes:
        label_names: tuple of label names in the order ``flux`` expects them
            (e.g. ``("teff", "logg", "feh")``).
    """

    label_names: tuple[str, ...]

    @property
    def label_bounds(self) -> np.ndarray:
        """(n_labels, 2) numpy array of the lower and upper bound of each label.

        In the order of ``label_names`` and in label units (teff [K], logg and
        feh [dex], ...).
        """
        ...

    @property
    def wave(self) -> np.ndarray:
        """(n_pix,) float64 numpy array of vacuum wavelengths [A], uniform in ln(lambda).

        The rest-frame model grid (it may consist of several uniform segments
        with one common step, e.g. APOGEE's three chips).
        """
        ...

    def flux(self, labels):
        """Normalized flux for one label vector. Pure, jit/vmap/grad-safe.

        Args:
            labels: (n_labels,) in the order of ``label_names``, in label units
                (teff [K], logg and feh [dex], ...).

        Returns:
            (n_pix,) continuum-normalized rest-frame flux on ``wave``.
        """
        ...


def check_labels(labels, label_names) -> None:
    """Raise ``ValueError`` unless the trailing axis of ``labels`` has one entry per label.

    Works on tracers too (only the static shape is inspected).
    """
    shape = np.shape(labels)
    n = len(label_names)
    if len(shape) == 0 or shape[-1] != n:
        raise ValueError(
            f"labels must have {n} entries ({', '.join(label_names)}) on the last axis; "
            f"got shape {shape}"
        )
