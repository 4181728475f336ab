"""Where the benchmarks find the binspec reference data (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """``$JAXSPEC_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    shared = os.environ.get("JAXSPEC_SHARED_DATA")
    return Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared" / "data"


def binspec_dir() -> Path:
    """``$JAXSPEC_BINSPEC_DATA``, else ``$JAXSPEC_SHARED_DATA/binspec``, else ``../shared/data/binspec``
    beside the checkout."""
    env = os.environ.get("JAXSPEC_BINSPEC_DATA")
    if env:
        return Path(env)
    return shared_data_dir() / "binspec"
