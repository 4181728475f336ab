"""fit_binary on simulated spectra with known truth (default emulator, R = 7500, S/N 50)."""

import numpy as np
import pytest

import jaxspec
from jaxspec.fit.binary import fit_binary
from jaxspec.models import BinaryModel

TRUTH = {"teff_1": 5900.0, "logg_1": 4.3, "teff_2": 4600.0, "logg_2": 4.6, "feh": -0.3,
         "rv_1": -35.0, "rv_2": 50.0, "vsini_1": 6.0, "vsini_2": 3.0, "flux_ratio": 0.35}


def _simulate(theta, snr=50.0, seed=0):
    em = jaxspec.default_model()
    wave = np.arange(5000.0, 5300.0, 0.15)
    bm = BinaryModel(em, wave, resolution=7500.0)
    flux = np.asarray(bm.flux(theta)) * (1.0 + 0.05 * (wave - 5150.0) / 150.0)  # a sloped continuum
    rng = np.random.default_rng(seed)
    err = np.full(wave.size, 1.0 / snr)
    return wave, flux + rng.normal(0.0, 1.0, wave.size) * err, err


@pytest.fixture(scope="module")
def binary_fit():
    wave, flux, err = _simulate(TRUTH)
    flux[100:110] = np.nan  # bad pixels are masked, not propagated
    return fit_binary(flux, wave, err=err, resolution=7500.0)


def test_recovers_the_binary(binary_fit):
    f = binary_fit
    p = f.params
    assert f.flag == "" and f.converged
    assert f.is_binary and f.delta_chi2 > 100
    # Tolerances: a few times the reported errors at S/N 50 (and the emulator's 5e-4 rms).
    assert abs(p["rv_1"] - TRUTH["rv_1"]) < 1.0
    assert abs(p["rv_2"] - TRUTH["rv_2"]) < 2.0
    assert abs(p["teff_1"] - TRUTH["teff_1"]) < 150.0
    assert abs(p["teff_2"] - TRUTH["teff_2"]) < 250.0
    assert abs(p["flux_ratio"] - TRUTH["flux_ratio"]) < 0.05
    assert abs(p["feh"] - TRUTH["feh"]) < 0.15
    assert 0.7 < f.chi2 / f.dof < 1.3
    assert all(np.isfinite(v) for v in f.errors.values())
    # Errors of parameters at a bound (here vsini_2 -> 0, unresolved at R 7500) are not
    # meaningful and are flagged in at_bound; all others are positive.
    assert all(v > 0 for k, v in f.errors.items() if k not in f.at_bound)
    assert set(f.at_bound) <= {"vsini_1", "vsini_2"}
    assert np.all(np.isfinite(f.model)) and np.all(f.ivar[100:110] == 0)
    assert "flux_ratio" in f.summary() and f.to_dict()["is_binary"] is True


def test_single_star_is_not_a_binary():
    wave, flux, err = _simulate({**TRUTH, "flux_ratio": 1e-6}, seed=1)
    f = fit_binary(flux, wave, err=err, resolution=7500.0)
    assert not f.is_binary
    assert abs(f.single_params["rv_1"] - TRUTH["rv_1"]) < 1.0
    assert abs(f.single_params["teff_1"] - TRUTH["teff_1"]) < 150.0


def test_bad_input():
    wave, flux, err = _simulate(TRUTH)
    with pytest.raises(ValueError, match="shape"):
        fit_binary(flux[:-1], wave, err=err)
    with pytest.raises(ValueError, match="masked"):
        fit_binary(np.full_like(flux, np.nan), wave, err=err)
    with pytest.raises(ValueError, match="increasing"):
        fit_binary(flux, wave[::-1], err=err)
    with pytest.raises(ValueError, match="model grid"):
        fit_binary(flux, wave + 1000.0, err=err)
    with pytest.raises(ValueError, match="not both"):
        fit_binary(flux, wave, err=err, ivar=1 / err**2)
