"""Benchmark scripts run tiny: they must keep working, not be fast."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_generator_runs(tmp_path):
    mod = _load(ROOT / "benchmarks" / "bench_generator.py")
    out = tmp_path / "bench.json"
    result = mod.main([
        "--wave-min", "5000", "--wave-max", "5006", "--pixel-kms", "1", "--n-lines", "0",
        "--batch", "3", "--repeat", "1", "--dense-spectra", "1", "--out", str(out),
    ])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))  # what main returns is what it wrote
    for key in (
        "device", "jax", "precision", "cpu_count", "n_lines", "n_pix", "batch",
        "single_compile_s", "single_ms", "batch_ms_per_spectrum", "dense",
    ):
        assert key in saved, key
    assert saved["batch"] == 3 and saved["n_pix"] > 300 and saved["n_lines"] > 100
    assert saved["single_ms"] > 0 and saved["batch_ms_per_spectrum"] > 0
    # The dense numpy reference agrees with the sparse evaluation up to windowing
    # (a few 1e-4; see tests/linelist/test_generator.py for the tolerance).
    assert saved["dense"]["n_spectra"] == 1
    assert saved["dense"]["max_abs_diff"] < 3e-3
