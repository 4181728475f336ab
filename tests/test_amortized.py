"""The amortized predictor: network, order-free loss, continuum normalization, training, files, errors,
and the bundled predictor on fresh simulated spectra."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxspec.amortized import (
    AMORTIZED_VERSION,
    TARGETS,
    AmortizedNet,
    AmortizedPredictor,
    default_predictor,
    detect_binary,
    normalize_continuum,
    order_free_nll,
    simulate_training_set,
    swap_stars,
    train_amortized,
)


@pytest.fixture(scope="module")
def tiny():
    data = simulate_training_set(400, np.random.default_rng(0))
    pred, report = train_amortized(data, steps=60, eval_every=30, batch_size=64)
    return data, pred, report


def test_network_shapes():
    net = AmortizedNet(100, channels=(4, 8), hidden=16, rngs=nnx.Rngs(0))
    m, s, logit = net(jnp.zeros(100))
    assert m.shape == (len(TARGETS),) and s.shape == (len(TARGETS),) and logit.shape == ()
    m, s, logit = net(jnp.zeros((3, 100)))
    assert m.shape == (3, len(TARGETS)) and logit.shape == (3,)


def test_order_free_loss():
    rng = np.random.default_rng(1)
    y = rng.uniform(0.0, 0.5, (4, len(TARGETS)))
    ys = swap_stars(y)
    np.testing.assert_allclose(swap_stars(ys), y)
    assert np.allclose(ys[:, -1], 1 - y[:, -1]) and np.allclose(ys[:, 0], y[:, 4])
    mean = jnp.asarray(y + 0.01)
    ls = jnp.zeros_like(mean)
    binary = jnp.ones(4)
    # A binary predicted in the other order costs the same as in the right order.
    a = order_free_nll(mean, ls, jnp.asarray(y), jnp.asarray(ys), binary)
    b = order_free_nll(jnp.asarray(ys + 0.01), ls, jnp.asarray(y), jnp.asarray(ys), binary)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    # A single star: the star-2 block does not count, and the swapped order is not allowed.
    single = jnp.zeros(4)
    far = mean.at[:, 4:8].add(100.0)
    np.testing.assert_allclose(order_free_nll(far, ls, jnp.asarray(y), jnp.asarray(ys), single),
                               order_free_nll(mean, ls, jnp.asarray(y), jnp.asarray(ys), single), rtol=1e-5)


def test_normalize_continuum_recovers_a_continuum():
    x = np.linspace(-1, 1, 1500)
    cont = 300.0 * (1 + 0.3 * x) * (1 - 0.2 * x**2)
    lines = 1 - 0.5 * np.exp(-0.5 * ((x[:, None] - np.linspace(-0.95, 0.95, 60)) / 0.004) ** 2).sum(1)
    flux = cont * lines
    out = np.asarray(normalize_continuum(jnp.asarray(flux), jnp.ones(x.size, bool)))
    np.testing.assert_allclose(out, lines, atol=0.01)  # noiseless: the clipped fit converges to the continuum
    good = np.ones(x.size, bool)
    good[200:400] = False
    out = np.asarray(normalize_continuum(jnp.asarray(flux), jnp.asarray(good)))
    assert np.all(out[200:400] == 1.0) and np.allclose(out[good], lines[good], atol=0.015)


@pytest.mark.heavy
def test_tiny_training_and_file_round_trip(tiny, tmp_path):
    data, pred, report = tiny
    assert report.history[-1][2] < report.history[0][2] + 1.0  # validation loss did not blow up
    assert 0.0 < report.threshold < 1.0
    out = pred.predict(data["flux"][:5], data["wave"])
    for key in (*TARGETS, "flux_ratio", "p_binary", "is_binary", "teff_1_err"):
        assert out[key].shape == (5,), key
    assert np.all(out["share"] <= 0.5 + 1e-9) and np.all(out["flux_ratio"] <= 1.0 + 1e-9)
    assert np.all(out["teff_1_err"] > 0)
    path = tmp_path / "am.h5"
    pred.save(path)
    back = AmortizedPredictor.load(path)
    o2 = back.predict(data["flux"][:5])
    for key in ("teff_1", "rv_2", "p_binary"):
        np.testing.assert_allclose(o2[key], out[key], rtol=1e-5, atol=1e-5)
    assert back.threshold == pred.threshold and back.meta["n_train"] == pred.meta["n_train"]
    import h5py

    with h5py.File(path, "a") as f:
        f.attrs["version"] = AMORTIZED_VERSION + 1
    with pytest.raises(ValueError, match=rf"version {AMORTIZED_VERSION + 1}.*reads version {AMORTIZED_VERSION}"):
        AmortizedPredictor.load(path)
    with h5py.File(path, "a") as f:
        f.attrs["version"] = AMORTIZED_VERSION
        name = sorted(f["params"].keys())[0]
        grp = f["params"][name]
        leaf = grp if isinstance(grp, h5py.Dataset) else None
        if leaf is None:
            paths = []
            f["params"].visititems(lambda k, v: paths.append(k) if isinstance(v, h5py.Dataset) else None)
            key = "params/" + paths[0]
        else:
            key = "params/" + name
        arr = f[key][()]
        del f[key]
        f.create_dataset(key, data=np.zeros(tuple(s + 1 for s in arr.shape), arr.dtype))
    with pytest.raises(ValueError, match="has shape"):
        AmortizedPredictor.load(path)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        AmortizedPredictor.load(tmp_path / "junk.h5")


@pytest.mark.heavy
def test_grids_resampled_or_refused(tiny):
    data, pred, _ = tiny
    wave = data["wave"]
    # Another grid over the same range: resampled, about the same answer.
    other = np.linspace(wave[0], wave[-1], 2000)
    f = np.interp(other, wave, data["flux"][0])
    a = pred.predict(data["flux"][0], wave)
    b = pred.predict(f, other)
    assert abs(float(a["rv_1"][0] - b["rv_1"][0])) < 30.0
    with pytest.raises(ValueError, match=r"covers 6000.0-6300.0 A, the network's grid 4965.0-5335.*A"):
        pred.predict(np.ones(500), np.linspace(6000, 6300, 500))
    with pytest.raises(ValueError, match="pixels; the network's grid has"):
        pred.predict(np.ones(100))
    bad = data["flux"][0].copy()
    bad[:] = np.nan
    with pytest.raises(ValueError, match="fewer than half"):
        pred.predict(bad)
    with pytest.raises(ValueError, match="wave has shape"):
        pred.predict(data["flux"][0], wave[:-1])


@pytest.fixture(scope="module")
def bundled():
    try:
        return default_predictor()
    except FileNotFoundError as err:
        pytest.skip(str(err))


def test_bundled_predictor_on_fresh_binaries(bundled):
    """Fresh binaries at S/N 50 with well separated, bright companions: the one-pass answer
    is good enough to start a fit (bounds: about 3x the benchmark's median errors)."""
    rng = np.random.default_rng(7)
    d = simulate_training_set(60, rng, binary_fraction=1.0, snr=(50.0, 50.0), flux_ratio=(0.5, 1.0),
                              rv_difference=(60.0, 150.0))
    out = bundled.predict(d["flux"], d["wave"])
    t = d["targets"]
    # Order-free pair error: which star is brighter is ambiguous for flux ratios near 1.
    direct = np.abs(out["rv_1"] - t[:, 2]) + np.abs(out["rv_2"] - t[:, 6])
    crossed = np.abs(out["rv_1"] - t[:, 6]) + np.abs(out["rv_2"] - t[:, 2])
    assert np.median(np.minimum(direct, crossed) / 2) < 15.0
    assert np.median(np.abs(out["feh"] - t[:, 8])) < 0.3
    det = detect_binary(d["flux"], d["wave"], predictor=bundled)
    assert det["false_positive_rate"] == pytest.approx(0.01)
    assert np.mean(det["is_binary"]) > 0.8
    singles = simulate_training_set(60, rng, binary_fraction=0.0, snr=(50.0, 50.0))
    assert np.mean(detect_binary(singles["flux"], singles["wave"], predictor=bundled)["is_binary"]) < 0.1


@pytest.mark.heavy
def test_fit_binary_with_the_amortized_start(bundled):
    import jaxspec

    rng = np.random.default_rng(11)
    d = simulate_training_set(1, rng, binary_fraction=1.0, snr=(60.0, 60.0), flux_ratio=(0.6, 0.9),
                              rv_difference=(80.0, 120.0))
    fit = jaxspec.fit_binary(d["flux"][0], d["wave"], d["err"][0], resolution=7500.0, init="amortized")
    assert fit.ok and fit.is_binary, fit.summary()
    p = d["params"]
    got = sorted([float(fit.params["rv_1"]), float(fit.params["rv_2"])])
    want = sorted([float(p["rv_1"][0]), float(p["rv_2"][0])])
    np.testing.assert_allclose(got, want, atol=5.0)
    with pytest.raises(ValueError, match="within a factor 2 of the network's"):
        jaxspec.fit_binary(d["flux"][0], d["wave"], d["err"][0], resolution=30000.0, init="amortized")
    with pytest.raises(ValueError, match="init must be one of"):
        jaxspec.fit_binary(d["flux"][0], d["wave"], d["err"][0], resolution=7500.0, init="cnn")
