"""Benchmark scripts run tiny: they must keep working, not be fast."""

from __future__ import annotations

import importlib.util
import json

import pytest
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


def test_bench_information_bounds_match_the_fit_errors():
    """bench_information's Cramer-Rao bounds (explicit continuum nuisance parameters, physical units)
    equal fit_binary's Gauss-Newton errors (variable projection, logistic parameters) on noiseless data,
    where the fit sits at the truth: two independent routes to the same Fisher matrix. Toy model of
    bench_calibration (40 analytic lines) for speed."""
    import numpy as np

    import jaxspec
    from jaxspec.fit.binary import _get_fitter, _options
    from jaxspec.simulate import simulate

    info = _load(ROOT / "benchmarks" / "bench_information.py")
    calib = _load(ROOT / "benchmarks" / "bench_calibration.py")
    model, wave, resolution, opts = calib.setup("toy")
    bm = _get_fitter(model, wave, resolution, _options(model, **opts), None).bm
    truth = {"teff_1": 5900.0, "logg_1": 4.4, "teff_2": 5000.0, "logg_2": 4.7, "feh": -0.3, "rv_1": -30.0,
             "rv_2": 35.0, "vsini_1": 10.0, "vsini_2": 6.0, "flux_ratio": 0.5}
    theta = {k: np.array([v]) for k, v in truth.items()}
    snr, slope = 40.0, 0.05
    _, err, clean = simulate(bm, theta, np.random.default_rng(0), snr=snr, slope=slope)
    sigma = info.cramer_rao(bm, theta, snr, slope, degree=2)[0]
    fit = jaxspec.fit_binary(clean[0], wave, err[0], model=model, resolution=resolution, **opts)
    for i, name in enumerate(bm.spec.free):
        assert abs(fit.params[name] - truth[name]) < 0.05 * sigma[i], name  # noiseless: at the truth
        # float32 Jacobians on both routes: measured within 1e-3, vsini_1 (10 km/s, barely resolved) 0.8 %
        np.testing.assert_allclose(fit.errors[name], sigma[i], rtol=0.02, err_msg=name)
    lim = info.limits(np.array([sigma]), list(bm.spec.free))
    assert 0.0 < lim["rv_2"]["information_limit"] <= 1.0


def test_information_limit_analytic_cases():
    """P(|N(0, sigma)| <= tol) averaged over cases: erf(1 / sqrt 2) = 0.6827 at sigma = tol, 0.9545 at
    sigma = tol / 2; a zero sigma is always within, an unknown (NaN) one never."""
    import numpy as np

    rec = _load(ROOT / "benchmarks" / "bench_recovery.py")
    assert abs(rec.information_limit([2.0], 2.0) - 0.682689) < 1e-6
    assert abs(rec.information_limit([1.0, 2.0], 2.0) - (0.954500 + 0.682689) / 2) < 1e-6
    assert rec.information_limit([0.0, np.nan], 1.0) == 0.5


def test_sloped_continuum_is_what_simulate_multiplies():
    import numpy as np

    from jaxspec.simulate import simulate, sloped_continuum

    calib = _load(ROOT / "benchmarks" / "bench_calibration.py")
    model, wave, resolution, opts = calib.setup("toy")
    from jaxspec.fit.binary import _get_fitter, _options

    bm = _get_fitter(model, wave, resolution, _options(model, **opts), None).bm
    theta = {k: np.array([v]) for k, v in {"teff_1": 5900.0, "logg_1": 4.4, "teff_2": 5000.0, "logg_2": 4.7,
                                           "feh": -0.3, "rv_1": -30.0, "rv_2": 35.0, "vsini_1": 10.0,
                                           "vsini_2": 6.0, "flux_ratio": 0.5}.items()}
    _, err0, clean0 = simulate(bm, theta, np.random.default_rng(0), snr=40.0)
    _, err1, clean1 = simulate(bm, theta, np.random.default_rng(0), snr=40.0, slope=0.1)
    cont = sloped_continuum(wave, 0.1)
    # 10 % across the band, 1 at the mean wavelength (linear in wavelength)
    assert abs(cont[-1] - cont[0] - 0.1) < 1e-12 and abs(np.mean(cont) - 1.0) < 1e-12
    np.testing.assert_allclose(clean1[0], clean0[0] * cont, rtol=1e-12)
    np.testing.assert_allclose(err1[0], cont / 40.0, rtol=1e-12)


def test_report_reads_every_committed_record(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    rows = report.collect()
    have = {r["record"] for r in rows if r["value"]}
    for path in (ROOT / "benchmarks" / "records").glob("*.json"):
        if path.name in report.KNOWN:
            assert path.name in have, f"{path.name} gave no figure"
    md = report.markdown(rows)
    assert md.count("\n") == len(rows) + 2
    # a record that cannot be read is named, not skipped
    (tmp_path / "fit.json").write_text("{not json")
    with pytest.raises(ValueError, match="fit.json"):
        report.collect(tmp_path)


@pytest.mark.heavy
def test_bench_clone_runs_tiny(tmp_path):
    """The clone benchmark end to end on a 30 A band and a 2 x 2 x 2 grid (numbers not judged)."""
    mod = _load(ROOT / "benchmarks" / "bench_clone.py")
    out = tmp_path / "clone.json"
    res = mod.main(["--wave-min", "5000", "--wave-max", "5030", "--teff-min", "5000", "--teff-max", "6000",
                    "--teff-step", "1000", "--logg", "4.0,4.5", "--feh=-0.5,0.0", "--steps", "40",
                    "--n-off", "3", "--n-fit", "2", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(res))
    assert saved["grid"]["n_points"] == 8 and saved["build"]["n_lines"] > 10
    for key in ("on_grid_rms", "off_grid", "eval_ms_per_spectrum", "labels"):
        assert key in saved, key
    assert set(saved["labels"]) >= {"clone", "generator"}
    assert 0.0 <= saved["labels"]["clone"]["teff_within_100K"] <= 1.0


@pytest.mark.heavy
def test_bench_amortized_runs_tiny(tmp_path):
    """The amortized benchmark end to end at a tiny size (numbers not judged)."""
    pytest.importorskip("h5py")
    mod = _load(ROOT / "benchmarks" / "bench_amortized.py")
    out = tmp_path / "amortized.json"
    res = mod.main(["--n", "6", "--n-single", "6", "--n-det", "6", "--n-det-single", "6", "--n-start", "2",
                    "--out", str(out), "--figure", str(tmp_path / "det.png")])
    assert (tmp_path / "det.png").stat().st_size > 0
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(res))
    for key in ("network", "fit", "headline_detection", "detection", "start"):
        assert key in saved, key
    assert set(saved["detection"]["detectors"]) == {"network", "delta_bic", "ccf"}
