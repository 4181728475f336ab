"""fit_binary_epochs: joint fits of several visits, on the cheap toy model (the benchmark
``benchmarks/bench_epochs.py`` measures the same on the bundled default model)."""

import numpy as np
import pytest

from jaxspec.fit.epochs import EPOCH_FLAGS, fit_binary_epochs
from jaxspec.io import Spectrum
from jaxspec.models import BinaryModel
from jaxspec.orbit import keplerian_rv
from jaxspec.simulate import simulate
from tests._shared import toy_model, toy_wave

OPTIONS = {"rv_range": 150.0}
TRUTH = dict(teff_1=6000.0, logg_1=4.3, teff_2=5000.0, logg_2=4.7, feh=-0.2, vsini_1=6.0, vsini_2=4.0,
             flux_ratio=0.6)
ORBIT = dict(period=12.0, e=0.2, omega=1.0, tp=55003.0, k1=35.0, k2=50.0, gamma=8.0)
MJD = 55000.0 + np.array([0.5, 3.1, 6.2, 8.0, 10.4])


def _epochs(rng, mjd=MJD, snr=40.0):
    wave = toy_wave()
    bm = BinaryModel(toy_model(), wave)
    v1, v2 = (np.asarray(x, np.float64) for x in keplerian_rv(mjd, *ORBIT.values()))
    n = mjd.size
    par = {k: np.full(n, TRUTH[k]) for k in TRUTH}
    par["rv_1"], par["rv_2"] = v1, v2
    flux, err, _ = simulate(bm, par, rng, snr=snr, slope=0.03)
    return wave, flux, err, v1, v2


@pytest.fixture(scope="module")
def joint():
    rng = np.random.default_rng(3)
    wave, flux, err, v1, v2 = _epochs(rng)
    spectra = [Spectrum(wave, f, 1 / e**2, id="star", meta={"mjd": m}) for f, e, m in zip(flux, err, MJD)]
    fit = fit_binary_epochs(spectra, model=toy_model(), **OPTIONS)
    return fit, v1, v2, spectra


def test_joint_fit_recovers_velocities_and_labels_with_honest_errors(joint):
    fit, v1, v2, _ = joint
    assert fit.flag == 0 and fit.used.all() and fit.is_binary
    pull = np.concatenate([(fit.params["rv_1"] - v1) / fit.errors["rv_1"],
                           (fit.params["rv_2"] - v2) / fit.errors["rv_2"]])
    assert np.all(np.abs(pull) < 4.0), pull  # 10 velocities: 4 sigma is a 1-in-1500 miss
    for name in ("teff_1", "teff_2", "flux_ratio"):
        assert abs(fit.params[name] - TRUTH[name]) < 4.0 * fit.errors[name], name
    # chi2 per degree of freedom near 1 (noise only) and no worse than the single-epoch fits'
    # (which have more parameters, so their chi2 itself is lower): 0.05 is one standard deviation
    # of a reduced chi2 on ~900 dof
    assert fit.chi2 / fit.dof == pytest.approx(1.0, abs=0.1)
    own = np.nansum(fit.epoch_fits.chi2) / np.nansum(fit.epoch_fits.dof)
    assert fit.chi2 / fit.dof < own + 0.05
    np.testing.assert_array_equal(fit.mjd, MJD)
    assert fit.covariance.shape == (len(fit.joint_names),) * 2


def test_mass_ratio_from_the_joint_velocities(joint):
    fit, *_ = joint
    q = fit.mass_ratio()
    truth_q = ORBIT["k1"] / ORBIT["k2"]
    assert abs(q.q - truth_q) < max(3.0 * q.q_err, 0.02)
    assert abs(q.gamma - ORBIT["gamma"]) < max(3.0 * q.gamma_err, 0.5)


def test_epoch_table_and_summary(joint):
    fit, *_ = joint
    t = fit.epoch_table()
    assert len(t) == 5 and {"mjd", "rv_1", "rv_1_err", "rv_2", "rv_2_err", "epoch_flag"} <= set(t.colnames)
    assert str(t["rv_1"].unit) == "km / s"
    assert "epoch 4" in fit.summary()


def test_a_bad_epoch_is_masked_and_the_rest_still_fit(joint):
    fit0, v1, v2, spectra = joint
    bad = list(spectra)
    bad[2] = Spectrum(spectra[2].wave, spectra[2].flux, np.zeros_like(spectra[2].ivar), id="star",
                      meta={"mjd": MJD[2]})
    fit = fit_binary_epochs(bad, model=toy_model(), **OPTIONS)
    assert fit.epoch_flag[2] & EPOCH_FLAGS["masked"] and "masked" in fit.epoch_error[2]
    assert np.isnan(fit.params["rv_1"][2]) and fit.used.sum() == 4
    keep = [0, 1, 3, 4]
    np.testing.assert_allclose(fit.params["rv_1"][keep], fit0.params["rv_1"][keep],
                               atol=3.0 * fit0.errors["rv_1"][keep].max())


def test_epochs_on_other_grids_are_resampled_or_refused(joint):
    _, _, _, spectra = joint
    s = spectra[1]
    shifted = Spectrum(s.wave[3:-3] * (1 + 1e-6), s.flux[3:-3], s.ivar[3:-3], id="star", meta={"mjd": MJD[1]})
    mixed = [spectra[0], shifted, *spectra[2:]]
    with pytest.raises(ValueError, match="epoch 1 has its own wavelength grid"):
        fit_binary_epochs(mixed, model=toy_model(), resample=False, **OPTIONS)
    fit = fit_binary_epochs(mixed, model=toy_model(), **OPTIONS)
    assert fit.epoch_flag[1] & EPOCH_FLAGS["resampled"] and fit.used.all()


def test_missing_dates_are_flagged_and_refuse_the_orbit():
    from jaxspec.orbit import fit_orbit

    rng = np.random.default_rng(5)
    wave, flux, err, *_ = _epochs(rng, mjd=MJD[:3])
    fit = fit_binary_epochs(flux, wave, err=err, model=toy_model(), **OPTIONS)
    assert np.all(fit.epoch_flag & EPOCH_FLAGS["no_date"])
    with pytest.raises(ValueError, match="date"):
        fit_orbit(fit.mjd, fit.params["rv_1"], fit.errors["rv_1"], fit.params["rv_2"], fit.errors["rv_2"])


def test_bad_arguments():
    wave = toy_wave()
    with pytest.raises(ValueError, match="no epochs"):
        fit_binary_epochs([], model=toy_model())
    with pytest.raises(ValueError, match="not a Spectrum"):
        fit_binary_epochs([np.ones(5)], model=toy_model())
    with pytest.raises(ValueError, match="per_epoch must include"):
        fit_binary_epochs(np.ones((2, wave.size)), wave, model=toy_model(), per_epoch=("rv_1",))
    with pytest.raises(ValueError, match="no epoch can be fitted"):
        fit_binary_epochs(np.ones((2, wave.size)), wave, ivar=np.zeros((2, wave.size)), model=toy_model(),
                          **OPTIONS)
