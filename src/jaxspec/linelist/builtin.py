"""The built-in line list shipped with jaxspec (3800-9000 A, vacuum).

``jaxspec/data/linelist_builtin.npz`` is written by
``scripts/build_atomic_data.py``: all atomic VALD3 lines of a solar extract
(central depth >= 0.1 in the Sun) plus the Gaia-ESO v5 lines VALD lacks that
can reach a line-to-continuum ratio of 10^-2 somewhere in the label box (see
that script's docstring for the matching rule and the cut). The file also
holds per-line ``loggf_offset`` calibration offsets [dex], zeros until a
calibration has been run.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources

import numpy as np

from jaxspec.linelist.linelist import LineList

__all__ = ["builtin_linelist"]

_DATA_FILE = "linelist_builtin.npz"


@functools.cache
def _load_arrays() -> dict[str, np.ndarray]:
    resource = importlib.resources.files("jaxspec").joinpath("data", _DATA_FILE)
    if not resource.is_file():
        raise FileNotFoundError(
            f"jaxspec/data/{_DATA_FILE} is missing; build it with "
            "`python scripts/build_atomic_data.py`"
        )
    with importlib.resources.as_file(resource) as path, np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def builtin_linelist(calibrated: bool = True) -> LineList:
    """The built-in atomic line list, sorted by vacuum wavelength (cached).

    Args:
        calibrated: add the stored per-line ``loggf_offset`` [dex] to log gf.
            Without offsets in the file (or with all zeros) both choices give
            the same list.

    Returns:
        ``LineList`` (wave float64 [A, vacuum]; see ``LineList`` for fields).
        Its arrays are read-only because the result is shared between callers;
        use ``LineList.select`` or copy the arrays to modify them.

    Raises:
        FileNotFoundError: the package data file is missing.
    """
    return _builtin(bool(calibrated))


@functools.cache
def _builtin(calibrated: bool) -> LineList:
    arrays = _load_arrays()
    fields = {f.name: arrays[f.name] for f in dataclasses.fields(LineList)}
    offset = arrays.get("loggf_offset")
    if calibrated and offset is not None:
        fields["loggf"] = fields["loggf"].astype(np.float64) + offset.astype(np.float64)
    ll = LineList.from_arrays(**fields)
    for f in dataclasses.fields(ll):
        getattr(ll, f.name).setflags(write=False)
    return ll
