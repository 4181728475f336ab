"""jaxspec.latent: the convolutional beta-VAE, its training, its latent measures and its files.

Fast: tiny networks on a toy data set of 160-pixel spectra (two Gaussian lines whose depth and
position are the known factors), a few hundred steps. The full-size run is
``benchmarks/bench_latent.py`` (tested tiny here).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from jaxspec import latent
from tests._shared import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(channels=(8, 8), strides=(2, 2), kernel_sizes=(5, 5), hidden=32)
P = 160


def toy(n, seed=0, noise=0.01):
    """Spectra with two absorption lines: depth a in 0.1..0.6, shift s in -5..5 pixels."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 0.6, n)
    s = rng.uniform(-5.0, 5.0, n)
    x = np.arange(P)
    flux = 1.0 - a[:, None] * (np.exp(-0.5 * ((x - 50 - s[:, None]) / 3.0) ** 2)
                               + 0.5 * np.exp(-0.5 * ((x - 110 - s[:, None]) / 4.0) ** 2))
    flux += noise * rng.standard_normal(flux.shape)
    return flux.astype(np.float32), {"depth": a, "shift": s}


@pytest.fixture(scope="module")
def trained():
    flux, labels = toy(1200)
    vae, report = latent.train_vae(flux, latent_dim=3, beta=1.0, sigma=0.02, steps=400, batch_size=32,
                                   learning_rate=3e-3, model_kwargs=SMALL, seed=0)
    return vae, report, flux, labels


def test_shapes_of_encode_decode_and_traversal():
    vae = latent.BetaVAE(150, 4, **SMALL)  # 150 is padded to 152 (factor 4) and cropped back
    assert vae.n_padded == 152 and vae.n_pix == 150
    mu, logvar = latent.encode(vae, np.ones((7, 150)))
    assert mu.shape == logvar.shape == (7, 4) and mu.dtype == np.float32
    assert latent.decode(vae, mu).shape == (7, 150)
    assert latent.encode(vae, np.ones(150))[0].shape == (1, 4)
    t = latent.traversal(vae, 2, np.linspace(-2, 2, 5))
    assert t.shape == (5, 150)
    # untrained: offset 1 and scale 1, so decoding is 1 + the network's output
    with pytest.raises(ValueError, match="dim must be in 0..3"):
        latent.traversal(vae, 4, [0.0])
    with pytest.raises(ValueError, match="base must have shape"):
        latent.traversal(vae, 0, [0.0], base=np.zeros(3))


def test_training_lowers_the_loss_and_beats_the_mean_spectrum(trained):
    vae, report, flux, labels = trained
    h = report.history
    assert h[-1]["loss"] < 0.2 * h[0]["loss"]
    assert report.val_rms < 0.5 * report.mean_rms, (report.val_rms, report.mean_rms)
    assert report.n_val == 120 and report.n_train == 1080 and report.steps == 400
    assert report.kl_per_dim.shape == (3,)
    json.dumps(report.to_dict())
    # the code holds both factors: for each, some dimension shares > 0.5 nats with it (a
    # uniform factor known to 1/10 of its range has 2.3 nats) and ranks it with |Spearman| > 0.6
    mu, logvar = latent.encode(vae, flux)
    s = latent.latent_summary(mu, labels, logvar=logvar)
    for name in ("depth", "shift"):
        assert max(s["mi_nats"][name]) > 0.5 and s["best"][name]["abs_spearman"] > 0.6, s["best"]
    assert s["n_informative"] >= 2


def test_a_larger_beta_lowers_the_kl_term():
    flux, _ = toy(600, seed=1)
    kls = []
    for beta in (0.1, 30.0):
        _, rep = latent.train_vae(flux, latent_dim=3, beta=beta, sigma=0.02, steps=150, batch_size=32,
                                  learning_rate=3e-3, model_kwargs=SMALL, val_fraction=0.2)
        kls.append(rep.kl_per_dim.sum())
    assert kls[1] < 0.5 * kls[0], kls


def test_save_load_round_trip_is_exact(trained, tmp_path):
    vae, report, flux, _ = trained
    wave = np.linspace(5000.0, 5016.0, P)
    path = latent.save_vae(tmp_path / "vae.h5", vae, wave=wave, meta={"beta": 1.0})
    back = latent.load_vae(path)
    a, b = latent.encode(vae, flux[:20]), latent.encode(back, flux[:20])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(latent.decode(vae, a[0]), latent.decode(back, a[0]))
    info = latent.vae_info(path)
    assert info["version"] == latent.VAE_VERSION and info["meta"] == {"beta": 1.0}
    np.testing.assert_array_equal(info["wave"], wave)
    assert info["config"]["latent_dim"] == 3


def test_a_file_of_another_version_or_a_corrupt_one_is_refused(trained, tmp_path):
    import h5py

    vae = trained[0]
    path = latent.save_vae(tmp_path / "vae.h5", vae)
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 99
    with pytest.raises(ValueError, match=r"version 99, but this jaxspec reads version 1"):
        latent.load_vae(path)
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
        latent.load_vae(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "jaxspec-stack"
    with pytest.raises(ValueError, match="not a jaxspec VAE file"):
        latent.load_vae(tmp_path / "other.h5")
    path = latent.save_vae(tmp_path / "vae2.h5", vae)
    with h5py.File(path, "a") as f:
        del f["params/enc/0/kernel"]
    with pytest.raises(ValueError, match="missing VAE array 'enc/0/kernel'"):
        latent.load_vae(path)


def test_bad_input_is_refused_with_a_message(trained):
    vae = trained[0]
    with pytest.raises(ValueError, match=r"P = 160 pixels .* got shape \(2, 150\)"):
        latent.encode(vae, np.ones((2, 150)))
    bad = np.ones((3, P))
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite pixels \(in spectra \[1\]\).*prepare_flux"):
        latent.encode(vae, bad)
    with pytest.raises(ValueError, match="latent_dim = 3"):
        latent.decode(vae, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN or infinite pixels"):
        latent.train_vae(bad, steps=1)
    with pytest.raises(ValueError, match="smaller than the downsampling factor"):
        latent.BetaVAE(3, 2, **SMALL)
    # prepare_flux masks NaN and ivar-0 pixels, fills them with 1 and refuses all-masked spectra
    ivar = np.ones((3, P))
    ivar[2, :10] = 0.0
    f, good = latent.prepare_flux(bad * 2.0, ivar=ivar, normalize=True)
    assert not good[1, 5] and not good[2, :10].any() and good.sum() == 3 * P - 11
    assert f[1, 5] == 1.0 and np.allclose(f[good], 1.0)
    allnan = np.full((2, P), np.nan)
    allnan[0] = 1.0
    with pytest.raises(ValueError, match=r"spectra \[1\] have no good pixel"):
        latent.prepare_flux(allnan)
    with pytest.raises(ValueError, match="ivar has shape"):
        latent.prepare_flux(np.ones((2, P)), ivar=np.ones((2, P - 1)))


def test_masked_pixels_do_not_enter_the_loss():
    """Garbage behind the mask changes nothing the network is trained on."""
    flux, _ = toy(300, seed=2)
    mask = np.ones_like(flux, dtype=bool)
    mask[:, 20:40] = False
    junk = flux.copy()
    junk[:, 20:40] = 50.0
    kw = dict(latent_dim=2, steps=50, batch_size=16, model_kwargs=SMALL, val_fraction=0.1)
    _, a = latent.train_vae(flux, mask=mask, **kw)
    _, b = latent.train_vae(junk, mask=mask, **kw)
    assert a.history[-1]["loss"] == pytest.approx(b.history[-1]["loss"], rel=1e-4)


def _stack(path, flux, wave, **kw):
    from jaxspec.io import write_stack

    return write_stack(path, flux, wave, ivar=np.full(flux.shape, 1e4), **kw)


def test_training_on_a_stack_and_mismatched_grids(tmp_path):
    flux, _ = toy(200, seed=3)
    wave = np.linspace(5000.0, 5016.0, P)
    counts = flux * np.linspace(300, 900, 200)[:, None]  # unnormalized: the median normalization undoes it
    counts[0, 7] = np.nan
    a = _stack(tmp_path / "a.h5", counts, wave)
    b = _stack(tmp_path / "b.h5", counts[:50], wave)
    f, good, w, ids = latent.load_stack_flux([a, b])
    assert f.shape == (250, P) and not good[0, 7] and ids[0] == "a.h5:0" and ids[-1] == "b.h5:49"
    np.testing.assert_allclose(np.median(f[1:], axis=1), 1.0, rtol=1e-6)
    vae, rep, w = latent.train_vae_on_stack(a, latent_dim=2, steps=50, batch_size=16, model_kwargs=SMALL)
    assert vae.n_pix == P and rep.n_train + rep.n_val == 200 and np.isfinite(rep.val_rms)
    np.testing.assert_array_equal(w, wave)
    c = _stack(tmp_path / "c.h5", counts[:10], wave + 0.5)
    with pytest.raises(ValueError, match="c.h5: its wavelength grid .* differs from .*a.h5"):
        latent.load_stack_flux([a, c])
    with pytest.raises(ValueError, match="differs from the given wave"):
        latent.load_stack_flux(a, wave=wave[:-1])


def test_mutual_information_matches_the_bivariate_gaussian():
    """KSG on N = 2,000 draws: within 0.04 nats of MI = -0.5 ln(1 - rho^2) (its noise is ~0.01-0.02)."""
    rng = np.random.default_rng(1)
    for rho in (0.0, 0.6, 0.9, 0.99):
        x = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], 2000)
        mi = latent.mutual_information(x[:, 0], x[:, 1])
        assert mi.shape == (1,)
        assert abs(mi[0] - (-0.5 * np.log(1.0 - rho**2))) < 0.04, (rho, mi)
    # invariant to a monotone map of either variable (up to the estimator's noise)
    x = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.8], [0.8, 1.0]], 2000)
    a = latent.mutual_information(x[:, :1], {"y": x[:, 1]})["y"][0]
    b = latent.mutual_information(np.exp(x[:, :1]), {"y": x[:, 1] ** 3})["y"][0]
    assert abs(a - b) < 0.05 and abs(a - 0.5108) < 0.04
    with pytest.raises(ValueError, match=r"needs \(2000,\)"):
        latent.mutual_information(x, {"y": x[:10, 0]})


def test_spearman_of_a_monotone_relation_and_against_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, 500)
    z = np.stack([np.exp(x), -x**3, rng.normal(size=500)], axis=1)
    r = latent.spearman(z, x)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and abs(r[2]) < 0.15
    assert r[2] == pytest.approx(spearmanr(z[:, 2], x).statistic)


def test_dispersion_kl_and_informative_dims():
    rng = np.random.default_rng(0)
    mu = np.stack([rng.normal(0, 1, 1000), rng.normal(0, 0.05, 1000), np.full(1000, 0.01)], axis=1)
    logvar = np.stack([np.full(1000, -4.0), np.full(1000, -0.01), np.zeros(1000)], axis=1)
    d = latent.latent_dispersion(mu)
    assert d[0] > 0.5 and d[2] == pytest.approx(0.0, abs=1e-20)
    # dims 0 (variance 1) and 1 (variance 0.0025 < 0.01) : only 0 is informative at the default
    np.testing.assert_array_equal(latent.informative_dims(mu), [0])
    np.testing.assert_array_equal(latent.informative_dims(mu, threshold=1e-3), [0, 1])
    kl = latent.kl_per_dim(mu, logvar)
    assert kl[0] > 1.0 and kl[2] == pytest.approx(0.5 * 0.01**2)


def test_simulate_spectra_labels_in_the_box():
    import jaxspec

    flux, wave, labels = latent.simulate_spectra(6, np.random.default_rng(0), snr=None, bin_pixels=4,
                                                 batch_size=4)
    model = jaxspec.default_model()
    assert flux.shape == (6, wave.size) and flux.dtype == np.float32 and 1800 < wave.size < 1941
    assert np.all(np.diff(wave) > 0) and model.wave[0] < wave[0] and wave[-1] < model.wave[-1]
    assert set(labels) == {"teff", "logg", "feh", "rv", "vsini"}
    for (lo, hi), name in zip(np.asarray(model.label_bounds), model.label_names, strict=True):
        assert np.all((labels[name] >= lo) & (labels[name] <= hi))
    assert np.all(np.abs(labels["rv"]) <= 100) and np.all((labels["vsini"] >= 0) & (labels["vsini"] <= 50))
    assert np.all(np.isfinite(flux)) and 0.0 < flux.min() and flux.max() < 1.05
    # the velocity is the package's Doppler shift: the same star at rv = 60 km/s is the one at
    # rv = 0 seen at wave / (1 + rv / c) (the same seed draws the same teff, logg, feh)
    kw = dict(snr=None, vsini=(5.0, 5.0), batch_size=4)
    f0, w0, l0 = latent.simulate_spectra(2, np.random.default_rng(3), rv=(0.0, 0.0), **kw)
    f1, w1, l1 = latent.simulate_spectra(2, np.random.default_rng(3), rv=(60.0, 60.0), **kw)
    assert np.array_equal(l0["teff"], l1["teff"]) and w1.size < w0.size  # wider edges for the larger shift
    shifted = np.interp(w1 / (1.0 + 60.0 / 299792.458), w0, f0[0])
    inner = slice(20, -20)
    assert np.sqrt(np.mean((shifted - f1[0])[inner] ** 2)) < 3e-3
    assert np.sqrt(np.mean((np.interp(w1, w0, f0[0]) - f1[0])[inner] ** 2)) > 1e-2


def _load_bench():
    path = ROOT / "benchmarks" / "bench_latent.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.heavy
def test_bench_latent_runs_tiny(tmp_path):
    mod = _load_bench()
    out = tmp_path / "latent.json"
    res = mod.main(["--n", "200", "--steps", "50", "--scan-n", "100", "--scan-steps", "50", "--betas", "1,4",
                    "--latent-dim", "3", "--batch-size", "16", "--figure", str(tmp_path / "t.png"),
                    "--n-test", "100", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(res, default=float))
    for key in ("device", "jax", "n_spectra", "beta", "beta_choice", "latent_dim", "n_informative",
                "threshold", "mi_nats", "spearman", "best", "val_rms", "train_seconds", "survey_files"):
        assert key in saved, key
    assert saved["n_spectra"] == 200 and saved["beta"] in (1.0, 4.0) and len(saved["beta_choice"]["scan"]) == 2
    assert set(saved["mi_nats"]) == {"rv", "teff", "logg", "feh", "vsini"}
    assert (tmp_path / "t.png").stat().st_size > 1000


SURVEY = SHARED_DATA / "survey-files"


@pytest.mark.skipif(not (SURVEY / "lamost").is_dir(), reason=f"real survey files not found at {SURVEY}")
def test_real_survey_spectra_can_be_encoded(tmp_path):
    """The LAMOST MRS blue arm (4950-5350 A, the bundled band) and the SDSS/BOSS spectrum, put on
    a VAE's grid by the benchmark's helper, packed into a stack and encoded (an untrained VAE:
    this checks the path from the files to latents, not what the latents mean)."""
    mod = _load_bench()
    wave = np.exp(np.linspace(np.log(4960.0), np.log(5340.0), 1895))
    rows = mod.real_spectra(SURVEY, wave)
    if not rows:
        pytest.skip(f"no readable LAMOST MRS / SDSS spectra in {SURVEY}")
    flux = np.stack([r["flux"] for r in rows])
    good = np.stack([r["good"] for r in rows])
    from jaxspec.io import write_stack

    path = write_stack(tmp_path / "real.h5", np.where(good, flux, np.nan), wave,
                       ivar=good.astype(np.float64), ids=[r["id"] for r in rows])
    f, g, w, ids = latent.load_stack_flux(path, wave=wave)
    assert f.shape == (len(rows), wave.size) and g.mean() > 0.5
    vae = latent.BetaVAE(wave.size, 4)
    mu, logvar = latent.encode(vae, f)
    assert mu.shape == (len(rows), 4) and np.all(np.isfinite(mu))
