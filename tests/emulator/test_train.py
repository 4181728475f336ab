"""Emulator training, the HDF5 grid format, label designs and the bundled default model."""

import h5py
import jax.numpy as jnp
import numpy as np
import pytest

import jaxspec
from jaxspec.emulator.train import (
    make_training_set,
    read_grid,
    sample_labels,
    train_emulator,
    write_grid,
)

BOX = np.array([[4000.0, 7500.0], [1.0, 5.0], [-2.0, 0.5]])


@pytest.mark.parametrize("method", ["sobol", "lhs", "uniform"])
def test_sample_labels_fill_the_box(method):
    lab = sample_labels(BOX, 256, seed=3, method=method)
    assert lab.shape == (256, 3)
    assert np.all(lab >= BOX[:, 0]) and np.all(lab <= BOX[:, 1])
    # Space-filling: every tenth of every axis is visited.
    u = (lab - BOX[:, 0]) / (BOX[:, 1] - BOX[:, 0])
    for j in range(3):
        assert len(np.unique(np.floor(u[:, j] * 10))) == 10
    np.testing.assert_array_equal(lab, sample_labels(BOX, 256, seed=3, method=method))
    with pytest.raises(ValueError, match="unknown method"):
        sample_labels(BOX, 4, method="grid")
    with pytest.raises(ValueError, match="lo < hi"):
        sample_labels(BOX[::-1, ::-1], 4)


def test_grid_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    labels, flux = rng.normal(size=(5, 3)), rng.uniform(size=(5, 7))
    wave = np.linspace(5000.0, 5006.0, 7)
    path = tmp_path / "grid.h5"
    write_grid(path, labels, flux, wave, ("teff", "logg", "feh"))
    l2, f2, w2, names = read_grid(path)
    np.testing.assert_array_equal(l2, labels)
    np.testing.assert_array_equal(f2, flux)
    np.testing.assert_array_equal(w2, wave)
    assert names == ("teff", "logg", "feh")
    with h5py.File(path, "a") as f:
        del f["flux"]
    with pytest.raises(ValueError, match="lacks the dataset 'flux'"):
        read_grid(path)
    bad = tmp_path / "garbage.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_grid(bad)
    with pytest.raises(ValueError, match="pixels"):
        write_grid(tmp_path / "x.h5", labels, flux[:, :6], wave, ("a", "b", "c"))


def test_training_recovers_a_smooth_model():
    """A small MLP learns a smooth 2-label family of spectra to well below its spread."""
    wave = np.linspace(5000.0, 5010.0, 40)
    labels = sample_labels([[0.0, 1.0], [-1.0, 1.0]], 1024, seed=0)

    def truth(lab):
        depth = 0.3 + 0.4 * lab[:, :1]
        center = 5005.0 + lab[:, 1:]
        return 1.0 - depth * np.exp(-0.5 * ((wave - center) / 1.5) ** 2)

    flux = truth(labels)
    em, report = train_emulator(labels, flux, wave, ("a", "b"), hidden=(64, 64), steps=3000,
                                batch_size=128, learning_rate=3e-3, eval_every=500, progress=False)
    test = sample_labels([[0.0, 1.0], [-1.0, 1.0]], 200, seed=9, method="uniform")
    err = np.asarray(em.flux_batch(test)) - truth(test)
    spread = np.std(flux)
    assert np.sqrt(np.mean(err**2)) < 0.05 * spread
    assert report.val_rms < 0.05 * spread and report.best_step > 0
    assert report.val_p99_per_pixel.shape == (40,)
    assert report.history[0][2] > report.val_rms  # validation improved during training
    with pytest.raises(ValueError, match="label_names"):
        train_emulator(labels, flux, wave, ("a",), steps=10, progress=False)
    with pytest.raises(ValueError, match="finite"):
        train_emulator(labels, np.where(flux > 0.9, np.nan, flux), wave, ("a", "b"), steps=10,
                       progress=False)


def test_make_training_set_bins_generator_pixels():
    gen = jaxspec.LineListGenerator(wave_min=5170.0, wave_max=5176.0)
    labels = np.array([[5772.0, 4.44, 0.0], [4500.0, 2.0, -1.0]])
    flux, wave = make_training_set(gen, labels, bin_pixels=3)
    full = np.asarray(gen.flux_batch(jnp.asarray(labels, jnp.float32)))
    n = gen.wave.size // 3 * 3
    np.testing.assert_allclose(flux, full[:, :n].reshape(2, -1, 3).mean(-1), atol=1e-6)
    assert wave.size == n // 3 and np.all(np.diff(np.log(wave)) > 0)


def test_default_model_matches_the_generator():
    """The bundled emulator against the generator on 24 random labels of its box.

    The full held-out measurement (1,000 labels, rms 4.9e-4) is
    benchmarks/bench_default_emulator.py; here 24 labels must stay under the
    issue's 1e-3 rms target.
    """
    em = jaxspec.default_model()
    assert em is jaxspec.default_model()  # cached
    assert em.label_names == ("teff", "logg", "feh")
    np.testing.assert_allclose(em.label_bounds, BOX)
    assert em.wave[0] >= 4949.0 and em.wave[-1] <= 5351.0
    assert np.all(np.diff(np.log(em.wave)) == pytest.approx(3.0 / 299792.458, rel=1e-6))
    gen = jaxspec.LineListGenerator(wave_min=4950.0, wave_max=5350.0)
    labels = sample_labels(BOX, 24, seed=777, method="uniform")
    truth, wave = make_training_set(gen, labels, bin_pixels=3)
    np.testing.assert_allclose(wave, em.wave, rtol=1e-12)
    pred = np.asarray(em.flux_batch(labels))
    assert np.sqrt(np.mean((pred - truth) ** 2)) < 1e-3


def test_small_training_on_binspec_network(tmp_path, monkeypatch):
    """Small version of benchmarks/bench_train_binspec.py (full run: 4096 spectra, held-out rms 1.1e-3).

    512 spectra of the first 400 APOGEE pixels from binspec's network, a 64 x 64
    MLP and 2000 steps: the held-out rms must fall far below the spread of the
    spectra (a broken trainer stays near it); 1e-2 is twice what this size reaches.
    """
    import importlib.util
    import json
    from pathlib import Path

    from tests._shared import SHARED_DATA

    if not (SHARED_DATA / "binspec" / "NN_normalized_spectra.npz").is_file():
        pytest.skip(f"binspec network not found in {SHARED_DATA / 'binspec'}; set JAXSPEC_SHARED_DATA")
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train_binspec.py"
    spec = importlib.util.spec_from_file_location("bench_train_binspec", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    monkeypatch.setenv("JAXSPEC_SHARED_DATA", str(SHARED_DATA))
    mod.main(["--n-train", "512", "--n-test", "200", "--steps", "2000", "--hidden", "64", "64",
              "--n-pix", "400", "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["test_rms"] < 1e-2
    assert r["test_rms"] < 0.25 * r["flux_std"]
