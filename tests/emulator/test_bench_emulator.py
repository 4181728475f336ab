"""benchmarks/bench_emulator.py runs tiny: it must keep working, not be fast."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("model", ["binspec", "random-mlp"])
def test_bench_emulator_runs(tmp_path, model):
    mod = _load(ROOT / "benchmarks" / "bench_emulator.py")
    out = tmp_path / "bench.json"
    result = mod.main(["--model", model, "--batches", "1,4", "--repeat", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))  # what main returns is what it wrote
    for key in ("device", "precision", "jax", "flax", "numpy", "cpu_count", "architecture", "n_pix",
                "rows", "target", "target_met", "source"):
        assert key in saved, key
    assert [r["batch"] for r in saved["rows"]] == [1, 4]
    for row in saved["rows"]:
        for key in ("jax_spectra_per_s", "numpy_spectra_per_s", "speedup", "jax_compile_s"):
            assert row[key] > 0, key
        assert row["max_abs_diff"] < 1e-4  # numpy and jaxspec evaluate the same network
    assert saved["target_met"] is None  # no batch of 1024 was timed
