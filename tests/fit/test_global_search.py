"""The global search of fit_binary: templates spanning rotation, the rv-profile restarts, basins
(``fit.modes``) and the ``ambiguous`` warning, checked against a reference search of local fits
from a grid of starts (``jaxspec.fit.local_fits``) on hard spectra simulated with the line-list
generator and fitted with the default emulator (template mismatch)."""

import dataclasses

import numpy as np
import pytest

import jaxspec
from jaxspec.fit import FLAGS, MODE_DELTA_CHI2, fit_binary, fit_binary_batch, local_fits
from jaxspec.fit.result import WARNINGS, flag_messages
from jaxspec.fit.binary import chi2_at
from jaxspec.models import BinaryModel
from jaxspec.simulate import BinnedModel, blaze_continuum, stress_population

R = 15000.0
WAVE = np.arange(4995.0, 5245.0, 0.12)  # one echelle order, as in a fibre spectrograph


def _grid_reference(fit, flux, err, step=50.0, **options):
    """Lowest chi2 of local fits from a (rv_1, rv_2) grid of starts (vsini 10 and 60 km/s)."""
    names = fit.names
    g1, g2 = (a.ravel() for a in np.meshgrid(np.arange(-100.0, 101.0, step), np.arange(-250.0, 251.0, step),
                                             indexing="ij"))
    keep = np.abs(g1 - g2) >= 8
    g1, g2 = g1[keep], g2[keep]
    starts = {n: [] for n in names}
    for vs in (10.0, 60.0):
        for n in names:
            v = {"rv_1": g1, "rv_2": g2, "vsini_1": vs, "vsini_2": vs,
                 "flux_ratio": np.clip(float(fit.params["flux_ratio"]), 0.1, 0.9)}.get(n, float(fit.params[n]))
            starts[n].append(np.broadcast_to(v, g1.shape))
    out = local_fits({n: np.concatenate(v) for n, v in starts.items()}, flux, WAVE, err, resolution=R, **options)
    return float(np.nanmin(out["chi2"]))


@pytest.fixture(scope="module")
def generator_model():
    em = jaxspec.default_model()
    gen = jaxspec.LineListGenerator(wave_min=4950.0, wave_max=5350.0, pixel_kms=1.0)
    return BinaryModel(BinnedModel(gen, 3, label_bounds=em.label_bounds), WAVE, resolution=R)


@pytest.mark.heavy
def test_stress_population_reaches_the_reference(generator_model):
    # 4 spectra of the benchmark's population (benchmarks/bench_stress.py runs 300 against a denser
    # grid): the fit's chi2 is within 1 of the best of ~140 local fits from a grid of starts, with
    # the continuum degrees the fit chose. With a fixed degree this was a known miss: at degree 4,
    # spectrum 3 ended 550 above the grid reference; at degree 2 a blazed spectrum leaves chi2 ~ 8x
    # the pixel count and the label search wanders. continuum_degree="auto" picks
    # each blaze's degree by the BIC.
    pop = stress_population(generator_model, 4, np.random.default_rng(11))
    assert pop["flux"].shape == (4, WAVE.size) and np.all(pop["continuum"] > 0)
    fit = fit_binary_batch(pop["flux"], WAVE, pop["err"], resolution=R, continuum_degree="auto")
    assert np.all(fit.ok), fit.flag_message
    for i in range(4):
        ref = _grid_reference(fit[i], pop["flux"][i], pop["err"][i],
                              continuum_degree=tuple(fit.continuum_degree[i]))
        assert fit.chi2[i] <= ref + 1.0, (i, fit.chi2[i], ref)
        assert fit.n_modes[i] >= 1 and fit.modes["chi2"][i][0] == pytest.approx(fit.chi2[i])


@pytest.mark.heavy
def test_rotating_primary_in_raw_counts(generator_model):
    # The case of the issue: raw counts with a blaze, S/N ~ 22, R 15,000, a primary rotating at
    # 60 km/s; the velocities are found (within 3 sigma) and the chi2 is no worse than a local
    # fit started at the truth.
    truth = {"teff_1": 6300.0, "logg_1": 4.1, "teff_2": 5200.0, "logg_2": 4.5, "feh": -0.1,
             "rv_1": -11.5, "rv_2": -102.5, "vsini_1": 60.0, "vsini_2": 8.0, "flux_ratio": 0.45}
    rng = np.random.default_rng(5)
    clean = np.asarray(generator_model.flux(truth))
    counts = blaze_continuum(WAVE, rng, degree=(4, 4))
    counts *= 22.0**2 / np.median(counts)
    err = np.sqrt(clean * counts)
    flux = clean * counts + rng.normal(size=WAVE.size) * err
    fit = fit_binary(flux, WAVE, err, resolution=R, continuum_degree="auto")
    start = {k: np.array([v]) for k, v in truth.items()}
    at_truth = local_fits(start, flux, WAVE, err, resolution=R, continuum_degree=tuple(fit.continuum_degree))
    assert fit.chi2 <= at_truth["chi2"][0] + 1.0
    for k in ("rv_1", "rv_2"):
        assert abs(fit.params[k] - truth[k]) < max(3.0 * fit.errors[k], 2.0), (k, fit.params[k])
    assert fit.is_binary


def test_identical_twins_are_one_solution_and_warnings_keep_ok():
    # Two identical stars at flux ratio 1: the swapped velocity pair fits exactly as well, but it
    # is the same physical solution (stars named the other way), so it is merged into one basin
    # and the fit is not ambiguous.
    em = jaxspec.default_model()
    wave = np.arange(5000.0, 5300.0, 0.15)
    bm = BinaryModel(em, wave, resolution=7500.0, shared=("feh", "teff", "logg"))
    th = {"teff": 5600.0, "logg": 4.4, "feh": 0.0, "rv_1": -40.0, "rv_2": 45.0, "vsini_1": 5.0,
          "vsini_2": 5.0, "flux_ratio": 0.999}
    rng = np.random.default_rng(2)
    flux = np.asarray(bm.flux(th)) + rng.normal(size=wave.size) / 80.0
    fit = fit_binary(flux, wave, np.full(wave.size, 1 / 80.0), resolution=7500.0,
                     shared=("feh", "teff", "logg"))
    r1, r2 = np.asarray(fit.modes["rv_1"]), np.asarray(fit.modes["rv_2"])
    swapped = [m for m in range(int(fit.n_modes)) if abs(r1[m] - 45) < 12 and abs(r2[m] + 40) < 12]
    assert not swapped and not fit.ambiguous and fit.flag == 0
    # the ambiguous bit is a warning: ok ignores it, the message names it
    warned = dataclasses.replace(fit, flag=FLAGS["ambiguous"])
    assert warned.ok and "ambiguous" in warned.flag_message
    assert not dataclasses.replace(fit, flag=FLAGS["ambiguous"] | FLAGS["not_converged"]).ok


def test_clear_binary_is_not_ambiguous():
    em = jaxspec.default_model()
    wave = np.arange(5000.0, 5300.0, 0.15)
    bm = BinaryModel(em, wave, resolution=7500.0)
    th = {"teff_1": 6000.0, "logg_1": 4.3, "teff_2": 4700.0, "logg_2": 4.6, "feh": -0.2, "rv_1": 20.0,
          "rv_2": -60.0, "vsini_1": 10.0, "vsini_2": 4.0, "flux_ratio": 0.4}
    rng = np.random.default_rng(4)
    flux = np.asarray(bm.flux(th)) + rng.normal(size=wave.size) / 100.0
    err = np.full(wave.size, 0.01)
    fit = fit_binary(flux, wave, err, resolution=7500.0)
    assert not fit.ambiguous and fit.flag == 0
    assert fit.runner_up_delta_chi2 > MODE_DELTA_CHI2
    c = np.asarray(fit.modes["chi2"])
    assert np.all(np.diff(c[np.isfinite(c)]) >= 0) and np.isnan(np.asarray(fit.modes["rv_1"])[~np.isfinite(c)]).all()
    # local_fits from the truth reaches the truth's chi2 or lower, and the fit is no worse
    # with the continuum degrees the fit chose
    deg = tuple(fit.continuum_degree)
    out = local_fits({k: np.array([v]) for k, v in th.items()}, flux, wave, err, resolution=7500.0,
                     continuum_degree=deg)
    truth_chi2 = chi2_at({k: np.array([v]) for k, v in th.items()}, flux, wave, err, resolution=7500.0,
                         continuum_degree=deg)[0]
    assert out["chi2"][0] <= truth_chi2 + 1e-6 and out["converged"][0]
    assert fit.chi2 <= out["chi2"][0] + 1.0
    with pytest.raises(ValueError, match="starts lacks"):
        local_fits({"rv_1": np.zeros(1)}, flux, wave, err, resolution=7500.0)


def test_bound_warnings_name_labels_and_velocities_at_their_bounds():
    """label_at_bound / rv_at_bound: free parameters within 1e-3 of their range from a bound."""
    from jaxspec.fit.binary import _bound_hits

    em = jaxspec.default_model()
    bm = BinaryModel(em, np.asarray(em.wave)[100:-100], rv_max=450.0)
    spec = bm.spec
    lo = {n: spec[n].lower for n in spec.names}
    mid = {n: 0.5 * (spec[n].lower + spec[n].upper) for n in spec.names}
    rows = [mid, {**mid, "teff_2": lo["teff_2"]}, {**mid, "rv_1": 450.0}, {**mid, "vsini_1": 0.0}]
    values = np.array([[r[n] for n in spec.names] for r in rows])
    lab, rv = _bound_hits(spec, values, em.label_names)
    # vsini at 0 is a physical value, not a model edge: neither warning
    assert lab.tolist() == [False, True, False, False] and rv.tolist() == [False, False, True, False]
    assert FLAGS["label_at_bound"] & WARNINGS and FLAGS["rv_at_bound"] & WARNINGS
    assert "label at bound" in flag_messages(FLAGS["label_at_bound"])


def test_raw_counts_with_a_blaze_fit_as_the_normalized_spectrum():
    # The same spectrum and noise, once continuum-normalized (a 5 % slope) and once in raw counts
    # with a blaze of degree 4 times a slope (S/N 50 at the median): with continuum_degree="auto"
    # the first is fitted at degree 2 (it is normalized) and the BIC picks >= 5 for
    # the second, and both
    # give the same velocities within their errors. At degree 2 the blazed spectrum leaves a
    # chi2 several times the pixel count.
    em = jaxspec.default_model()
    wave = np.arange(5000.0, 5300.0, 0.15)
    bm = BinaryModel(em, wave, resolution=7500.0)
    th = {"teff_1": 5900.0, "logg_1": 4.3, "teff_2": 4600.0, "logg_2": 4.6, "feh": -0.3, "rv_1": -35.0,
          "rv_2": 50.0, "vsini_1": 6.0, "vsini_2": 3.0, "flux_ratio": 0.35}
    rng = np.random.default_rng(7)
    clean = np.asarray(bm.flux(th))
    noise = rng.normal(size=wave.size)
    slope = 1.0 + 0.05 * (wave - 5150.0) / 150.0
    norm = fit_binary(clean * slope + noise * slope / 50.0, wave, slope / 50.0, resolution=7500.0,
                      continuum_degree="auto")
    counts = blaze_continuum(wave, rng, degree=(4, 4))
    counts *= 2500.0 / np.median(counts)
    err = np.sqrt(clean * counts)
    raw = fit_binary(clean * counts + noise * err, wave, err, resolution=7500.0, continuum_degree="auto")
    assert norm.ok and raw.ok and norm.is_binary and raw.is_binary
    assert int(norm.continuum_degree[0]) == 2 and int(raw.continuum_degree[0]) >= 5
    assert 0.85 < raw.chi2 / raw.dof < 1.15
    for k in ("rv_1", "rv_2"):
        sig = np.hypot(norm.errors[k], raw.errors[k])
        assert abs(raw.params[k] - norm.params[k]) < sig, (k, raw.params[k], norm.params[k], sig)
        assert abs(raw.params[k] - th[k]) < 3.0 * raw.errors[k] + 0.3
    # the degrees are in the summary, the results table and reproduce the fit's chi2
    assert "continuum degree per segment: " in raw.summary()
    assert raw.to_dict()["continuum_degree"] == str(int(raw.continuum_degree[0]))
    chi2 = chi2_at({k: np.array([v]) for k, v in raw.params.items()}, clean * counts + noise * err, wave, err,
                   resolution=7500.0, continuum_degree=np.asarray(raw.continuum_degree)[None])[0]
    assert chi2 == pytest.approx(raw.chi2, rel=1e-4)
    fixed2 = fit_binary(clean * counts + noise * err, wave, err, resolution=7500.0, continuum_degree=2)
    assert fixed2.chi2 > 3.0 * raw.chi2 and tuple(fixed2.continuum_degree) == (2,)
    # The default ("auto") in a batch: the normalized rows go to the program of a fixed degree 2
    # (the same numbers to the last bit), the raw row to the search over degrees (the single
    # fit's answer), and the results come back in the input order.
    fl = np.stack([clean * slope + noise * slope / 50.0, clean * counts + noise * err, clean * slope])
    er = np.stack([slope / 50.0, err, slope / 50.0])
    batch = fit_binary_batch(fl, wave, er, resolution=7500.0, chunk_size=1, threads=1)
    plain2 = fit_binary_batch(fl[[0, 2]], wave, er[[0, 2]], resolution=7500.0, chunk_size=1, threads=1,
                              continuum_degree=2)
    assert np.asarray(batch.continuum_degree)[:, 0].tolist() == [2, int(raw.continuum_degree[0]), 2]
    for k in batch.names:
        assert np.array_equal(batch.params[k][[0, 2]], plain2.params[k]), k
        assert batch.params[k][1] == pytest.approx(raw.params[k], rel=1e-5, abs=1e-4), k
    assert np.array_equal(batch.chi2[[0, 2]], plain2.chi2) and batch.chi2[1] == pytest.approx(raw.chi2, rel=1e-6)
