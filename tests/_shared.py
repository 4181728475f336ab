"""Where the shared reference data live, a marker for tests that need them, and the cheap toy model.

``JAXSPEC_SHARED_DATA`` overrides the default ``<repo>/../shared/data``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
_env = os.environ.get("JAXSPEC_SHARED_DATA")
SHARED_DATA = Path(_env) if _env else REPO.parent / "shared" / "data"

requires_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"shared reference data not found at {SHARED_DATA}; set JAXSPEC_SHARED_DATA",
)


@functools.cache
def toy_model():
    """The toy spectral model of ``benchmarks/bench_calibration.py`` (40 analytic lines on 5000-5080 A,
    about a hundredth of the default emulator's cost), one object per session so that fitters on one
    grid compile once for every module that uses it."""
    from tests.infer.conftest import load_bench

    return load_bench("bench_calibration").toy_model()


def toy_wave():
    """A 191-pixel grid (6 km/s) inside the toy model's band: the fixed shape of cheap fits."""
    return np.asarray(toy_model().wave[30:-30:8], dtype=np.float64)
