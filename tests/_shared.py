"""Where the shared reference data live, and a marker for tests that need them.

``JAXSPEC_SHARED_DATA`` overrides the default ``<repo>/../shared/data``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_env = os.environ.get("JAXSPEC_SHARED_DATA")
SHARED_DATA = Path(_env) if _env else REPO.parent / "shared" / "data"

requires_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"shared reference data not found at {SHARED_DATA}; set JAXSPEC_SHARED_DATA",
)
