"""``model=None``: the model that covers the observed pixels (jaxspec.models.auto)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxspec.models.auto import BandModel, choose_model, install_binspec, installed_model_path, pixel_plan
from tests._shared import SHARED_DATA

GALAH_CCDS = [(4714.0, 4902.0), (5648.0, 5873.0), (6478.0, 6737.0), (7585.0, 7886.0)]


def test_inside_the_emulator_band_uses_the_emulator():
    from jaxspec import default_model

    wave = np.linspace(5000.0, 5200.0, 2000)
    ch = choose_model(wave, 20000.0)
    assert ch.model is default_model() and ch.kind == "emulator" and ch.keep.all()
    # above the emulator's resolution reach the generator takes over
    assert choose_model(wave, 60000.0).kind == "generator"


def test_galah_ccds_get_one_generator_segment_each():
    wave = np.concatenate([np.linspace(a, b, 400) for a, b in GALAH_CCDS])
    ch = choose_model(wave, 28000.0)
    assert ch.kind == "generator" and ch.keep.all()
    model = ch.model
    assert isinstance(model, BandModel) and len(model.ranges) == 4
    for (a, b), (lo, hi) in zip(GALAH_CCDS, model.ranges, strict=True):
        assert lo < a and hi > b and (a - lo) < 20 and (hi - b) < 20  # 500 km/s margins, 5 A rounding
    assert model.pixel_kms == 3.0
    step = np.diff(np.log(model.wave))
    inner = step[step < 2 * step.min()]
    np.testing.assert_allclose(inner, 3.0 / 299792.458, rtol=1e-6)
    assert "4 segments" in ch.description and "1600 of 1600" in ch.description
    # the same coverage gives the same (cached) model object: one compiled fit per instrument
    assert choose_model(wave + 0.01, 28000.0).model is model


def test_wide_low_resolution_spectrum_is_cut_to_the_line_list_range():
    wave = np.exp(np.linspace(np.log(3700.0), np.log(9100.0), 3909))  # LAMOST LRS
    ch = choose_model(wave, 1800.0)
    assert ch.kind == "generator" and len(ch.model.ranges) == 1
    used = wave[ch.keep]
    assert 3800 < used[0] < 3830 and 8970 < used[-1] < 9000
    assert not ch.keep[wave < 3800].any() and not ch.keep[wave > 9000].any()
    assert ch.model.pixel_kms == pytest.approx(26.0)


def test_pixel_plan():
    assert pixel_plan(None) == (1.0, 3)
    assert pixel_plan(28000.0) == (1.0, 3)
    assert pixel_plan(7500.0) == (2.0, 3)
    assert pixel_plan(80000.0) == (1.0, 1)
    with pytest.raises(ValueError, match="positive"):
        pixel_plan(-5.0)


def test_band_model_flux_is_the_binned_generator(tmp_path):
    from jaxspec import LineListGenerator

    m = BandModel([(6000.0, 6030.0), (6100.0, 6120.0)], fine_kms=1.0, bin=3)
    lab = np.array([5800.0, 4.4, 0.0])
    f = np.asarray(m.flux(lab))
    assert f.shape == m.wave.shape and np.all(np.isfinite(f)) and f.min() < 0.9
    g = LineListGenerator(wave_min=6000.0, wave_max=6030.0, pixel_kms=1.0,
                          label_bounds={"feh": (-2.5, 0.5)})
    fg = np.asarray(g.flux(lab))
    n = (fg.size // 3) * 3
    np.testing.assert_allclose(f[: n // 3], fg[:n].reshape(-1, 3).mean(axis=1), atol=1e-6)
    # the second segment too: evaluated with the first in one line list and one set of block
    # tables, it equals a generator of its own
    g2 = LineListGenerator(wave_min=6100.0, wave_max=6120.0, pixel_kms=1.0, label_bounds={"feh": (-2.5, 0.5)})
    fg2 = np.asarray(g2.flux(lab))
    n2 = (fg2.size // 3) * 3
    np.testing.assert_allclose(f[n // 3:], fg2[:n2].reshape(-1, 3).mean(axis=1), atol=1e-6)
    # a pytree: jit takes it as an argument, and the result does not change
    import jax

    f2 = jax.jit(lambda mm, x: mm.flux(x))(m, lab)
    np.testing.assert_allclose(np.asarray(f2), f, atol=1e-6)
    with pytest.raises(ValueError, match="disjoint"):
        BandModel([(6000.0, 6030.0), (6020.0, 6040.0)])


def test_outside_every_model_names_the_ranges():
    with pytest.raises(ValueError, match=r"outside every model.*3800|outside every model"):
        choose_model(np.linspace(10000.0, 11000.0, 500))
    with pytest.raises(ValueError, match="all pixels are masked"):
        choose_model(np.linspace(5000.0, 5100.0, 50), ivar=np.zeros(50))


def test_h_band_without_an_installed_model_says_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSPEC_MODELS_DIR", str(tmp_path / "none"))
    with pytest.raises(ValueError, match="jaxspec models install binspec"):
        choose_model(np.linspace(15200.0, 16900.0, 1000))


@pytest.mark.skipif(not (SHARED_DATA / "binspec" / "NN_normalized_spectra.npz").is_file(),
                    reason="binspec reference data not found (../shared/data/binspec)")
def test_install_binspec_then_h_band_spectra_find_it(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSPEC_MODELS_DIR", str(tmp_path / "models"))
    from jaxspec.cli import main

    assert main(["models", "install", "binspec", str(SHARED_DATA / "binspec")]) == 0
    assert installed_model_path().is_file()
    wave = np.load(SHARED_DATA / "binspec" / "apogee_wavelength.npz")["wavelength"]
    ch = choose_model(wave, 22500.0)
    assert ch.kind == "installed:apogee" and ch.keep.all()
    assert ch.model.label_names == ("teff", "logg", "feh", "mgfe", "vmacro")
    with pytest.raises(FileNotFoundError, match="NN_normalized_spectra"):
        install_binspec(tmp_path / "empty")
