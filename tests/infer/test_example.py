"""The example script, run tiny (the default emulator: compiling the fit and the sampler takes a minute
on a 2-core CPU, so this is a slow test)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_example_sample_binary(tmp_path):
    pytest.importorskip("corner")
    path = ROOT / "examples" / "sample_binary.py"
    spec = importlib.util.spec_from_file_location("sample_binary_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    post = mod.main(["--out", str(tmp_path), "--wave-min", "5150", "--wave-max", "5200", "--num-warmup", "20",
                     "--num-samples", "20"])
    assert all(np.all(np.isfinite(v)) for v in post.samples.values())
    assert (tmp_path / "posterior_corner.png").stat().st_size > 10_000
    assert (tmp_path / "posterior_fit.png").stat().st_size > 10_000
