"""fit_binary, fit_single and fit_binary_batch on simulated spectra with known truth.

Default emulator, R = 7500, S/N 50. Tolerances are a few times the reported
1-sigma errors at S/N 50 (plus the emulator's 5e-4 rms).
"""

import jax
import numpy as np
import pytest

import jaxspec
from jaxspec.fit.binary import fit_binary, fit_binary_batch, fit_single
from jaxspec.fit.result import FLAGS, BinaryFit
from jaxspec.models import BinaryModel

TRUTH = {"teff_1": 5900.0, "logg_1": 4.3, "teff_2": 4600.0, "logg_2": 4.6, "feh": -0.3,
         "rv_1": -35.0, "rv_2": 50.0, "vsini_1": 6.0, "vsini_2": 3.0, "flux_ratio": 0.35}
WAVE = np.arange(5000.0, 5300.0, 0.15)


def _simulate(theta, snr=50.0, seed=0, wave=WAVE, resolution=7500.0, **kw):
    em = jaxspec.default_model()
    bm = BinaryModel(em, wave, resolution=resolution, **kw)
    flux = np.asarray(bm.flux(theta)) * (1.0 + 0.05 * (wave - 5150.0) / 150.0)  # a sloped continuum
    rng = np.random.default_rng(seed)
    err = np.full(wave.size, 1.0 / snr)
    return wave, flux + rng.normal(0.0, 1.0, wave.size) * err, err


@pytest.fixture(scope="module")
def binary_fit():
    wave, flux, err = _simulate(TRUTH)
    flux[100:110] = np.nan  # bad pixels are masked, not propagated
    err[200] = np.inf
    return fit_binary(flux, wave, err=err, resolution=7500.0)


def test_recovers_the_binary(binary_fit):
    f = binary_fit
    p = f.params
    assert f.flag == 0 and f.ok and f.flag_message == "" and f.converged
    assert f.is_binary and f.delta_chi2 > 100
    assert abs(p["rv_1"] - TRUTH["rv_1"]) < 1.0
    assert abs(p["rv_2"] - TRUTH["rv_2"]) < 2.0
    assert abs(p["teff_1"] - TRUTH["teff_1"]) < 150.0
    assert abs(p["teff_2"] - TRUTH["teff_2"]) < 250.0
    assert abs(p["flux_ratio"] - TRUTH["flux_ratio"]) < 0.05
    assert abs(p["feh"] - TRUTH["feh"]) < 0.15
    assert 0.8 < f.chi2 / f.dof < 1.2
    assert f.n_pixels == WAVE.size - 11
    assert all(np.isfinite(v) for v in f.errors.values())
    # Errors of parameters at a bound (vsini -> 0, unresolved at R 7500) are not meaningful
    # and are flagged in at_bound; all others are positive and a few times smaller than the
    # tolerances above.
    assert all(f.errors[k] > 0 for k in f.free if not f.at_bound[k])
    assert {k for k, v in f.at_bound.items() if v} <= {"vsini_1", "vsini_2"}
    assert f.errors["rv_1"] < 0.5 and f.errors["teff_1"] < 100
    assert f.covariance.shape == (len(f.free), len(f.free))
    assert np.all(np.isfinite(f.model)) and np.all(f.ivar[100:110] == 0) and f.ivar[200] == 0
    np.testing.assert_allclose(f.model_1 + f.model_2, f.model, atol=1e-5)
    # the local optima are sorted, the best first
    assert f.local_chi2[0] == pytest.approx(f.chi2, rel=1e-6) and np.all(np.diff(f.local_chi2) >= 0)
    s = f.summary()
    assert "flux_ratio" in s and "5146" in s  # the reference wavelength is stated
    d = f.to_dict()
    assert d["is_binary"] is True and d["flag"] == 0 and "rv_2_err" in d and "single_teff_1" in d
    assert "BinaryFit(teff_1=" in repr(f)


def test_result_is_a_pytree(binary_fit):
    leaves, treedef = jax.tree_util.tree_flatten(binary_fit)
    assert len(leaves) > 20
    back = jax.tree_util.tree_unflatten(treedef, leaves)
    assert isinstance(back, BinaryFit) and back.names == binary_fit.names
    doubled = jax.tree_util.tree_map(lambda x: x, binary_fit)
    assert doubled.params["rv_1"] == binary_fit.params["rv_1"]


def test_plot(binary_fit, tmp_path):
    pytest.importorskip("matplotlib")
    binary_fit.plot(tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 10_000


def test_single_star_is_not_a_binary():
    wave, flux, err = _simulate({**TRUTH, "flux_ratio": 1e-6}, seed=1)
    f = fit_binary(flux, wave, err=err, resolution=7500.0)
    assert not f.is_binary
    assert abs(f.single_params["rv_1"] - TRUTH["rv_1"]) < 1.0
    assert abs(f.single_params["teff_1"] - TRUTH["teff_1"]) < 150.0
    s = fit_single(flux, wave, err=err, resolution=7500.0)
    assert s.params["flux_ratio"] == 0.0 and "flux_ratio" not in s.free and "teff_2" not in s.free
    assert abs(s.params["rv_1"] - TRUTH["rv_1"]) < 1.0
    assert s.chi2 == pytest.approx(f.single_chi2, rel=1e-3)


def test_batch_matches_single_fits_and_isolates_failures():
    rng = np.random.default_rng(3)
    wave, flux, err = _simulate(TRUTH)
    stack = np.stack([flux, flux + rng.normal(0, 0.02, flux.size), flux, flux])
    errs = np.stack([err] * 4)
    stack[2] = np.nan  # all pixels masked
    errs[3, 5:] = np.inf  # too few usable pixels
    b = fit_binary_batch(stack, wave, err=errs, resolution=7500.0, chunk_size=3)  # padded last chunk
    assert b.batched and len(b) == 4
    assert b.flag[2] & FLAGS["too_few_pixels"] and b.flag[3] & FLAGS["too_few_pixels"]
    assert np.isnan(b.params["rv_1"][2]) and not b.is_binary[2]
    assert "too few pixels" in b.flag_message[3]
    assert b.ok[0] and b.ok[1] and b.model is None
    one = fit_binary(flux, wave, err=err, resolution=7500.0)
    for k in ("rv_1", "rv_2", "flux_ratio"):
        assert b.params[k][0] == pytest.approx(one.params[k], rel=1e-4, abs=1e-3)
    assert b[0].chi2 == pytest.approx(one.chi2, rel=1e-4)
    assert abs(b.params["rv_2"][1] - TRUTH["rv_2"]) < 2.0
    cols = b.to_dict()
    assert cols["rv_1"].shape == (4,) and len(cols["flag_message"]) == 4
    assert "batch of 4" in b.summary()
    with_model = fit_binary_batch(stack[:2], wave, err=errs[:2], resolution=7500.0, return_model=True)
    assert with_model.model.shape == (2, wave.size)
    np.testing.assert_allclose(with_model[0].model, one.model, atol=1e-4)


@pytest.mark.heavy  # about 35-50 s (compiles the vmapped path too); CI runs it in its second job
def test_threads_and_vmapped_starts_agree_with_the_sequential_cpu_path():
    """The CPU default (starts one after another, chunks in threads) and the accelerator
    path (starts vmapped) run the same iterations: equal results to float rounding."""
    from jaxspec.fit.binary import _Fitter, _options, prepare_spectrum

    rng = np.random.default_rng(4)
    wave, flux, err = _simulate(TRUTH)
    stack = np.stack([flux + rng.normal(0, 0.02, flux.size) for _ in range(3)])
    errs = np.stack([err] * 3)
    one = fit_binary_batch(stack, wave, err=errs, resolution=7500.0, threads=1)
    two = fit_binary_batch(stack, wave, err=errs, resolution=7500.0, threads=2, chunk_size=1)
    np.testing.assert_array_equal(one.chi2, two.chi2)
    model = jaxspec.default_model()
    fitter = _Fitter(model, wave, 7500.0, _options(model))
    fitter._sequential = False  # what a GPU or TPU runs
    d, _, iv = prepare_spectrum(stack, wave, errs)
    raw = fitter.run(lambda a, b: (d[a:b], iv[a:b]), 3, chunk_size=2, return_model=False)
    res = fitter.result(raw, bic_threshold=10.0, batched=True)
    np.testing.assert_allclose(res.chi2, one.chi2, rtol=1e-4)
    for k in ("rv_1", "rv_2", "teff_1", "flux_ratio"):
        np.testing.assert_allclose(res.params[k], one.params[k], rtol=1e-3, atol=1e-2)


def test_blackbody_mode_and_per_component_feh():
    theta = {**TRUTH, "feh_1": -0.3, "feh_2": -0.1}
    del theta["feh"]
    wave, flux, err = _simulate(theta, shared=(), flux_ratio_mode="blackbody")
    f = fit_binary(flux, wave, err=err, resolution=7500.0, shared=(), flux_ratio_mode="blackbody")
    assert "feh_1" in f.free and "feh_2" in f.free and "feh" not in f.names
    assert abs(f.params["rv_2"] - TRUTH["rv_2"]) < 2.0
    assert abs(f.params["flux_ratio"] - TRUTH["flux_ratio"]) < 0.05
    assert abs(f.params["feh_1"] - theta["feh_1"]) < 0.2


def test_per_pixel_resolution_and_fixed_parameters():
    res = np.linspace(6500.0, 8500.0, WAVE.size)
    wave, flux, err = _simulate(TRUTH, resolution=res)
    f = fit_binary(flux, wave, err=err, resolution=res, fixed={"vsini_2": 3.0})
    assert "vsini_2" not in f.free and f.params["vsini_2"] == 3.0 and f.errors["vsini_2"] == 0.0
    assert abs(f.params["rv_2"] - TRUTH["rv_2"]) < 2.0
    assert 0.8 < f.chi2 / f.dof < 1.2


def test_bad_input():
    wave, flux, err = _simulate(TRUTH)
    with pytest.raises(ValueError, match="shape"):
        fit_binary(flux[:-1], wave, err=err)
    with pytest.raises(ValueError, match="shape"):
        fit_binary(flux, wave, err=err[:-1])
    with pytest.raises(ValueError, match="masked"):
        fit_binary(np.full_like(flux, np.nan), wave, err=err)
    with pytest.raises(ValueError, match="increasing"):
        fit_binary(flux, wave[::-1], err=err)
    bad = wave.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_binary(flux, bad, err=err)
    from jaxspec import default_model

    with pytest.raises(ValueError, match=r"6000.00-6299.85 A .* 4950.02-5349.99 A"):
        fit_binary(flux, wave + 1000.0, err=err, model=default_model())
    with pytest.raises(ValueError, match=r"outside every model.*line-list generator 38..-89.. A"):  # model=None: no model covers it
        fit_binary(flux, wave + 12000.0, err=err)
    with pytest.raises(ValueError, match="not both"):
        fit_binary(flux, wave, err=err, ivar=1 / err**2)
    with pytest.raises(ValueError, match="negative"):
        fit_binary(flux, wave, err=-err)
    with pytest.raises(ValueError, match="negative"):
        fit_binary(flux, wave, ivar=-np.ones_like(err))
    few = np.full_like(err, np.inf)
    few[:8] = 0.02
    with pytest.raises(ValueError, match="usable pixels"):
        fit_binary(flux, wave, err=few)
    with pytest.raises(ValueError, match=r"\(N, P\)"):
        fit_binary_batch(flux, wave, err=err)
    with pytest.raises(ValueError, match="one spectrum"):
        fit_binary(np.stack([flux, flux]), wave)
    with pytest.raises(ValueError, match="flux_ratio_mode"):
        fit_binary(flux, wave, flux_ratio_mode="magic")
    with pytest.raises(ValueError, match="resolution"):
        fit_binary(flux, wave, resolution=np.ones(5) * 7500.0)
    with pytest.raises(ValueError, match="unknown parameters"):
        fit_binary(flux, wave, fixed={"teff_3": 5000.0})
