"""The emulator: binspec and Payne importers against numpy, save/load, range policy, jit, errors.

Independent references are plain float64 numpy evaluations of the formulas in
``../shared/data/binspec/README.md`` (binspec) and The Payne's code (leaky
ReLU, slope 0.01). Tests using the binspec networks skip when the data are
absent. Passes in float32 (default) and with ``JAX_ENABLE_X64=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxspec.emulator import MLP, Emulator, PerPixelNet
from jaxspec.emulator.networks import build_network
from jaxspec.spectral_model import SpectralModel
from tests._shared import SHARED_DATA

FLOAT = jnp.zeros(()).dtype  # float32, or float64 under JAX_ENABLE_X64=1
BINSPEC = Path(os.environ.get("JAXSPEC_BINSPEC_DATA") or SHARED_DATA / "binspec")
requires_binspec = pytest.mark.skipif(
    not (BINSPEC / "NN_normalized_spectra.npz").is_file(),
    reason=f"binspec networks not found in {BINSPEC}; set JAXSPEC_BINSPEC_DATA or JAXSPEC_SHARED_DATA",
)
BINSPEC_LABELS = ("teff", "logg", "feh", "mg_fe", "vmacro")


# ------------------------------------------------------------ numpy references


def binspec_numpy(nn, labels):
    """The README formula, float64, one spectrum per row: (n, L) -> (n, P)."""
    s = (labels - nn["x_min"]) / (nn["x_max"] - nn["x_min"]) - 0.5
    w0, b0 = nn["w_array_0"].astype(np.float64), nn["b_array_0"].astype(np.float64)
    w1, b1 = nn["w_array_1"].astype(np.float64), nn["b_array_1"].astype(np.float64)
    out = []
    for row in s:
        h = 1.0 / (1.0 + np.exp(-(np.einsum("phl,l->ph", w0, row) + b0)))
        out.append(np.einsum("ph,ph->p", w1, h) + b1)
    return np.array(out)


def payne_numpy(nn, labels):
    """The Payne's formula (leaky ReLU 0.01), float64: (n, L) -> (n, P)."""
    s = (labels - nn["x_min"]) / (nn["x_max"] - nn["x_min"]) - 0.5
    out = []
    for row in s:
        x = nn["w_array_0"] @ row + nn["b_array_0"]
        x = np.where(x > 0, x, 0.01 * x)
        x = nn["w_array_1"] @ x + nn["b_array_1"]
        x = np.where(x > 0, x, 0.01 * x)
        out.append(nn["w_array_2"] @ x + nn["b_array_2"])
    return np.array(out)


def payne_arrays(rng, n_lab=4, n_hid=16, n_pix=50):
    return {
        "w_array_0": rng.normal(size=(n_hid, n_lab)),
        "b_array_0": rng.normal(size=n_hid),
        "w_array_1": rng.normal(size=(n_hid, n_hid)) / 4.0,
        "b_array_1": rng.normal(size=n_hid),
        "w_array_2": rng.normal(size=(n_pix, n_hid)) / 4.0,
        "b_array_2": 1.0 + 0.1 * rng.normal(size=n_pix),
        "x_min": np.array([4000.0, 1.0, -2.0, -0.2])[:n_lab],
        "x_max": np.array([7000.0, 5.0, 0.5, 0.6])[:n_lab],
    }


def binspec_arrays(rng, n_lab=3, n_hid=4, n_pix=40):
    return {
        "w_array_0": rng.normal(size=(n_pix, n_hid, n_lab)),
        "b_array_0": rng.normal(size=(n_pix, n_hid)),
        "w_array_1": 0.1 * rng.normal(size=(n_pix, n_hid)),
        "b_array_1": 1.0 + 0.05 * rng.normal(size=n_pix),
        "x_min": np.array([4000.0, 1.0, -2.0])[:n_lab],
        "x_max": np.array([7000.0, 5.0, 0.5])[:n_lab],
    }


def wave_of(n_pix):
    return np.linspace(5000.0, 5100.0, n_pix)


# -------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def binspec_nn():
    with np.load(BINSPEC / "NN_normalized_spectra.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def binspec_em():
    wave = np.load(BINSPEC / "apogee_wavelength.npz")["wavelength"]
    return Emulator.from_binspec(BINSPEC / "NN_normalized_spectra.npz", BINSPEC_LABELS, wave)


@pytest.fixture(scope="module")
def payne_file(tmp_path_factory):
    arrays = payne_arrays(np.random.default_rng(1))
    path = tmp_path_factory.mktemp("payne") / "payne.npz"
    np.savez(path, **arrays)
    return path, arrays


@pytest.fixture(scope="module")
def small_binspec_file(tmp_path_factory):
    arrays = binspec_arrays(np.random.default_rng(2))
    path = tmp_path_factory.mktemp("binspec") / "small.npz"
    np.savez(path, **arrays)
    return path, arrays


@pytest.fixture(scope="module")
def payne_em(payne_file):
    path, a = payne_file
    return Emulator.from_payne(path, ("teff", "logg", "feh", "alpha_fe"), wave_of(a["b_array_2"].size))


@pytest.fixture(scope="module")
def small_em(small_binspec_file):
    path, a = small_binspec_file
    return Emulator.from_binspec(path, ("teff", "logg", "feh"), wave_of(a["b_array_1"].size))


def uniform_labels(em, n, seed=0):
    b = em.label_bounds
    return np.random.default_rng(seed).uniform(b[:, 0], b[:, 1], size=(n, b.shape[0]))


# ------------------------------------------------------------------ acceptance


@requires_binspec
def test_binspec_matches_numpy_formula(binspec_em, binspec_nn):
    """Acceptance 2: |jaxspec - numpy| <= 1e-5 on 100 labels uniform in [x_min, x_max].

    Why 1e-5 holds in float32: the weights are stored in float32, so both sides
    use the same numbers; the only differences are float32 roundings (relative
    6e-8) of the labels, the scaled labels and the pre-activations
    ``z = w0 s + b0`` (|z| up to ~60 for these weights, so a few 1e-6 at
    worst), damped by the sigmoid slope (<= 1/4) and summed with |w1| <= 1.75
    over 5 units. Typical errors are ~3e-7 (float64 mode: ~1e-15).
    """
    labels = np.random.default_rng(42).uniform(binspec_nn["x_min"], binspec_nn["x_max"], size=(100, 5))
    ref = binspec_numpy(binspec_nn, labels)
    got = np.asarray(binspec_em.flux_batch(labels), dtype=np.float64)
    assert got.shape == (100, 7214)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    one = np.asarray(binspec_em.flux(labels[3]), dtype=np.float64)
    np.testing.assert_allclose(one, ref[3], rtol=0, atol=1e-5)
    assert isinstance(binspec_em, SpectralModel)
    assert binspec_em.label_names == BINSPEC_LABELS
    assert binspec_em.wave.dtype == np.float64 and binspec_em.wave.shape == (7214,)
    np.testing.assert_array_equal(binspec_em.label_bounds[:, 0], binspec_nn["x_min"])
    assert binspec_em.architecture == {
        "kind": "per_pixel", "n_labels": 5, "n_pix": 7214, "n_hidden": 5, "activation": "sigmoid",
    }


@requires_binspec
def test_binspec_unnormalized_network_loads():
    wave = np.load(BINSPEC / "apogee_wavelength.npz")["wavelength"]
    em = Emulator.from_binspec(
        BINSPEC / "NN_unnormalized_spectra.npz", ("teff", "logg", "feh", "mg_fe"), wave, flux_scale=1e-6
    )
    f = np.asarray(em.flux(np.array([5500.0, 4.5, 0.0, 0.1])))
    assert f.shape == (7214,) and np.all(np.isfinite(f)) and np.all(f > 0)


def test_payne_layout_matches_numpy(payne_em, payne_file):
    _, a = payne_file
    labels = uniform_labels(payne_em, 20)
    ref = payne_numpy(a, labels)
    np.testing.assert_allclose(np.asarray(payne_em.flux_batch(labels)), ref, rtol=0, atol=1e-5)
    assert payne_em.architecture["kind"] == "mlp" and payne_em.architecture["hidden"] == [16, 16]
    assert payne_em.dtype == FLOAT


@pytest.mark.parametrize("n_hid", [4, 60])  # unrolled (L*H <= 256) and matrix-product paths
def test_per_pixel_paths_match_numpy(tmp_path, n_hid):
    a = binspec_arrays(np.random.default_rng(3), n_lab=5 if n_hid == 60 else 3, n_hid=n_hid, n_pix=30)
    a["x_min"] = np.zeros(a["w_array_0"].shape[2])
    a["x_max"] = np.arange(1.0, a["x_min"].size + 1.0)
    np.savez(tmp_path / "n.npz", **a)
    names = tuple(f"x{i}_fe" for i in range(a["x_min"].size))
    em = Emulator.from_binspec(tmp_path / "n.npz", names, wave_of(30))
    labels = uniform_labels(em, 7)
    np.testing.assert_allclose(np.asarray(em.flux_batch(labels)), binspec_numpy(a, labels), atol=1e-5)


@pytest.mark.parametrize("kind", ["payne", "per_pixel"])
def test_restrict_is_the_same_flux_on_fewer_pixels(kind, payne_em, small_em):
    em = payne_em if kind == "payne" else small_em
    sub = em.restrict(3, em.n_pix - 5)
    assert sub.n_pix == em.n_pix - 8 and isinstance(sub.network, type(em.network))
    np.testing.assert_array_equal(sub.wave, em.wave[3:-5])
    assert sub.label_names == em.label_names and sub.range_policy == em.range_policy
    labels = uniform_labels(em, 4)
    np.testing.assert_allclose(np.asarray(sub.flux_batch(labels)),
                               np.asarray(em.flux_batch(labels))[:, 3:-5], rtol=1e-6, atol=1e-6)
    for bad in ((5, 5), (-1, 4), (0, em.n_pix + 1), (4, 5)):
        with pytest.raises(ValueError, match="restrict needs"):
            em.restrict(*bad)


def test_a_network_without_restrict_is_sliced_by_the_binary_model():
    from jaxspec.models import BinaryModel

    class Lines(nnx.Module):
        """A custom network: a fixed line pattern scaled by the first label."""

        def __init__(self, n_pix):
            self.depth = nnx.Param(jnp.asarray(0.3 * (np.arange(n_pix) % 40 == 0), jnp.float32))
            self.architecture = {"kind": "custom", "n_labels": 3, "n_pix": n_pix}

        def __call__(self, x):
            return 1.0 - (0.5 + x[0]) * self.depth[...]

    wave = np.exp(np.log(5000.0) + 1e-5 * np.arange(4000))
    em = Emulator(Lines(wave.size), np.zeros(3), np.ones(3), label_names=("teff", "logg", "feh"), wave=wave)
    with pytest.raises(NotImplementedError, match="no restrict"):
        em.restrict(0, 10)
    obs = wave[1500:2500:3]
    th = {"teff_1": 0.7, "logg_1": 0.5, "teff_2": 0.2, "logg_2": 0.5, "feh": 0.5, "rv_1": 30.0, "rv_2": -40.0,
          "vsini_1": 10.0, "vsini_2": 0.0, "flux_ratio": 0.5}
    crop = BinaryModel(em, obs, rv_max=100.0, vsini_max=50.0, resolution=20000.0)
    full = BinaryModel(em, obs, rv_max=100.0, vsini_max=50.0, resolution=20000.0, crop=False)
    assert crop.model.wave.size < wave.size and crop.model.wave[0] > wave[0]
    np.testing.assert_allclose(crop.flux(th), full.flux(th), atol=2e-6)


# ------------------------------------------------------------------- save/load


def _h5_is_plain(path):
    """Every object is a group or a numeric dataset; attributes are strings or integers."""
    seen = []

    def visit(name, obj):
        seen.append(name)
        if isinstance(obj, h5py.Dataset):
            assert obj.dtype.kind in "fiu", (name, obj.dtype)
        for k, v in obj.attrs.items():
            assert isinstance(v, (str, bytes, np.integer)), (name, k, type(v))

    with h5py.File(path, "r") as f:
        for k, v in f.attrs.items():
            assert isinstance(v, (str, bytes, np.integer)), (k, type(v))
        f.visititems(visit)
    return seen


@pytest.mark.parametrize("kind", ["payne", "per_pixel"])
def test_save_load_bit_identical(tmp_path, kind, payne_em, small_em):
    em = payne_em if kind == "payne" else small_em
    if kind == "per_pixel":  # non-default metadata must survive too
        em = Emulator(
            em.network, em.x_min, em.x_max, label_names=em.label_names, wave=em.wave,
            label_bounds=em.label_bounds + [[10.0, -10.0], [0.1, -0.1], [0.0, 0.0]],
            flux_offset=0.25, flux_scale=np.linspace(0.5, 1.5, em.n_pix), range_policy="clip",
        )
    path = tmp_path / "em.h5"
    em.save(path)
    back = Emulator.load(path)
    labels = uniform_labels(em, 9, seed=5)
    labels[0] = em.label_bounds[:, 1] + 1.0  # outside: the policy must round-trip too
    np.testing.assert_array_equal(np.asarray(back.flux_batch(labels)), np.asarray(em.flux_batch(labels)))
    np.testing.assert_array_equal(np.asarray(back.flux(labels[1])), np.asarray(em.flux(labels[1])))
    assert back.label_names == em.label_names and back.range_policy == em.range_policy
    assert back.architecture == em.architecture and back.dtype == em.dtype
    np.testing.assert_array_equal(back.wave, em.wave)
    np.testing.assert_array_equal(back.label_bounds, em.label_bounds)
    names = _h5_is_plain(path)
    assert any(n.startswith("params/") for n in names) and "wave" in names
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "jaxspec-emulator" and int(f.attrs["format_version"]) == 1


# ------------------------------------------------------------ policy and jit


def test_range_policies(small_em):
    em = small_em
    lo, hi = em.label_bounds[:, 0], em.label_bounds[:, 1]
    inside = 0.5 * (lo + hi)
    outside = inside.copy()
    outside[1] = hi[1] + 2.0
    assert em.range_policy == "extrapolate"
    assert bool(em.in_range(inside)) and not bool(em.in_range(outside))
    np.testing.assert_array_equal(em.in_range(np.stack([inside, outside, lo, hi])), [True, False, True, True])
    nan_labels = inside.copy()
    nan_labels[0] = np.nan
    assert not bool(em.in_range(nan_labels))
    assert bool(jax.jit(em.in_range)(jnp.asarray(inside))) and not bool(jax.jit(em.in_range)(outside))
    extrapolated = np.asarray(em.flux(outside))

    clip = Emulator(em.network, em.x_min, em.x_max, label_names=em.label_names, wave=em.wave,
                    range_policy="clip")
    clipped = np.asarray(clip.flux(np.clip(outside, lo, hi)))
    np.testing.assert_array_equal(np.asarray(clip.flux(outside)), clipped)
    assert np.max(np.abs(np.asarray(clip.flux(outside)) - extrapolated)) > 1e-4

    raising = Emulator(em.network, em.x_min, em.x_max, label_names=em.label_names, wave=em.wave,
                       range_policy="raise")
    with pytest.raises(ValueError, match=r"'logg'.*outside its bounds"):
        raising.flux(outside)
    with pytest.raises(ValueError, match=r"'logg'.*spectrum 1"):
        raising.flux_batch(np.stack([inside, outside]))
    np.testing.assert_array_equal(np.asarray(raising.flux(inside)), np.asarray(em.flux(inside)))
    # Under jit the labels cannot be checked: an out-of-range spectrum is NaN.
    traced = np.asarray(jax.jit(raising.flux_batch)(jnp.asarray(np.stack([inside, outside]), FLOAT)))
    assert np.all(np.isfinite(traced[0])) and np.all(np.isnan(traced[1]))
    raising.range_policy = "extrapolate"
    np.testing.assert_array_equal(np.asarray(raising.flux(outside)), extrapolated)
    with pytest.raises(ValueError, match="range_policy"):
        raising.range_policy = "wrap"


def test_jit_no_recompile(small_em):
    em = small_em
    x = jnp.asarray(uniform_labels(em, 4, seed=7), FLOAT)
    f = jax.jit(em.flux)
    f(x[0])
    f(x[1])
    assert f._cache_size() == 1
    fb = jax.jit(jax.vmap(em.flux))
    np.testing.assert_allclose(np.asarray(fb(x)), np.asarray(em.flux_batch(x)), rtol=0, atol=1e-6)
    fb(x[::-1])
    assert fb._cache_size() == 1
    g = jax.jit(lambda e, lab: e.flux(lab))  # the emulator as a pytree argument
    np.testing.assert_allclose(np.asarray(g(em, x[0])), np.asarray(f(x[0])), rtol=0, atol=1e-6)
    g(em, x[2])
    assert g._cache_size() == 1
    leaves = jax.tree_util.tree_leaves(em)
    assert sum(leaf.size for leaf in leaves) > em.n_pix  # weights are leaves, metadata static


@pytest.mark.parametrize("policy", ["extrapolate", "clip", "raise"])
def test_gradients_finite_at_bounds(small_em, policy):
    em = Emulator(small_em.network, small_em.x_min, small_em.x_max, label_names=small_em.label_names,
                  wave=small_em.wave, range_policy=policy)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(em.flux(x))))
    for corner in (em.label_bounds[:, 0], em.label_bounds[:, 1]):
        g = np.asarray(grad(jnp.asarray(corner, FLOAT)))
        assert g.shape == (3,) and np.all(np.isfinite(g))
    jac = jax.jacfwd(em.flux)(jnp.asarray(em.label_bounds[:, 0], FLOAT))
    assert jac.shape == (em.n_pix, 3) and np.all(np.isfinite(np.asarray(jac)))


def test_networks_build_from_architecture():
    rngs = nnx.Rngs(0)
    for act in ("leaky_relu", "sigmoid", "silu", "tanh"):
        mlp = MLP(3, 11, (8, 6, 4), act, rngs=rngs)
        assert mlp(jnp.zeros(3)).shape == (11,)
        again = build_network(mlp.architecture, rngs=rngs)
        assert again.architecture == mlp.architecture
    pp = PerPixelNet(3, 11, 2, rngs=rngs)
    assert pp(jnp.zeros(3)).shape == (11,) and build_network(pp.architecture, rngs=rngs).n_hidden == 2
    em = Emulator(mlp, np.zeros(3), np.ones(3), label_names=("teff", "logg", "feh"), wave=wave_of(11))
    assert em.flux(np.full(3, 0.5)).shape == (11,)
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(3, 11, activation="relu6", rngs=rngs)
    with pytest.raises(ValueError, match="kind"):
        build_network({"kind": "transformer"}, rngs=rngs)


# --------------------------------------------------------------- bad input


def test_bad_labels(small_em):
    em = small_em
    with pytest.raises(ValueError, match="3 entries"):
        em.flux(np.ones(4))
    with pytest.raises(ValueError, match="flux_batch"):
        em.flux(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        em.flux_batch(np.ones(3))
    with pytest.raises(ValueError, match="'feh' is not finite"):
        em.flux(np.array([5000.0, 4.0, np.inf]))
    with pytest.raises(ValueError, match=r"'teff' is not finite.*spectrum 1"):
        em.flux_batch(np.array([[5000.0, 4.0, 0.0], [np.nan, 4.0, 0.0]]))


def test_bad_emulator_arguments(small_em):
    em = small_em
    kw = dict(label_names=em.label_names, wave=em.wave)
    with pytest.raises(ValueError, match="label_names"):
        Emulator(em.network, em.x_min, em.x_max, label_names=("teff", "logg"), wave=em.wave)
    with pytest.raises(ValueError, match="pixels"):
        Emulator(em.network, em.x_min, em.x_max, label_names=em.label_names, wave=em.wave[:-1])
    with pytest.raises(ValueError, match="x_max must exceed x_min"):
        Emulator(em.network, em.x_max, em.x_min, **kw)
    with pytest.raises(ValueError, match="range_policy"):
        Emulator(em.network, em.x_min, em.x_max, range_policy="ignore", **kw)
    with pytest.raises(ValueError, match="increasing"):
        Emulator(em.network, em.x_min, em.x_max, label_names=em.label_names, wave=em.wave[::-1])


def test_bad_npz_files(tmp_path, payne_file, small_binspec_file):
    path, a = payne_file
    names = ("teff", "logg", "feh", "alpha_fe")
    wave = wave_of(50)
    with pytest.raises(FileNotFoundError):
        Emulator.from_payne(tmp_path / "absent.npz", names, wave)
    missing = dict(a)
    del missing["w_array_1"]
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ValueError, match="'w_array_1'"):
        Emulator.from_payne(tmp_path / "missing.npz", names, wave)
    with pytest.raises(ValueError, match="50 output pixels but wave has 49"):
        Emulator.from_payne(path, names, wave[:-1])
    with pytest.raises(ValueError, match="4 labels"):
        Emulator.from_payne(path, names[:3], wave)
    bad = dict(a, b_array_1=np.zeros(15))
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="b_array_1 has shape"):
        Emulator.from_payne(tmp_path / "shape.npz", names, wave)
    nonfinite = dict(a, w_array_2=np.where(np.eye(50, 16) > 0, np.nan, a["w_array_2"]))
    np.savez(tmp_path / "nan.npz", **nonfinite)
    with pytest.raises(ValueError, match="w_array_2.*non-finite"):
        Emulator.from_payne(tmp_path / "nan.npz", names, wave)
    np.savez(tmp_path / "pickled.npz", **dict(a, x_min=np.array([object(), 1], dtype=object)))
    with pytest.raises(ValueError, match="pickled.npz"):
        Emulator.from_payne(tmp_path / "pickled.npz", names, wave)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all" * 10)
    with pytest.raises(ValueError, match="garbage.npz"):
        Emulator.from_payne(tmp_path / "garbage.npz", names, wave)
    # A per-pixel file given to the Payne importer (and vice versa): clear shape errors.
    bpath, b = small_binspec_file
    with pytest.raises(ValueError, match="missing array .w_array_2."):
        Emulator.from_payne(bpath, ("teff", "logg", "feh"), wave_of(40))
    with pytest.raises(ValueError, match="binspec's layout"):
        Emulator.from_binspec(path, names, wave)
    with pytest.raises(ValueError, match="40 output pixels but wave has 39"):
        Emulator.from_binspec(bpath, ("teff", "logg", "feh"), wave_of(39))


def test_bad_h5_files(tmp_path, small_em):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF garbage" * 100)
    with pytest.raises(ValueError, match=r"garbage\.h5.*not a readable HDF5"):
        Emulator.load(garbage)
    with pytest.raises(FileNotFoundError):
        Emulator.load(tmp_path / "absent.h5")

    good = tmp_path / "good.h5"
    small_em.save(good)

    def edited(name, edit):
        path = tmp_path / f"{name}.h5"
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "r+") as f:
            edit(f)
        return path

    cases = {
        "no_dataset": (lambda f: f.__delitem__("params/w1"), "missing network parameter 'w1'"),
        "no_wave": (lambda f: f.__delitem__("wave"), "missing dataset 'wave'"),
        "shape": (lambda f: (f.__delitem__("params/b1"), f.create_dataset("params/b1", data=np.ones(3))),
                  "'b1' has shape"),
        "tag": (lambda f: f.attrs.__setitem__("format", "something-else"), "format tag"),
        "version": (lambda f: f.attrs.__setitem__("format_version", 99), "unsupported format_version 99"),
        "extra": (lambda f: f.create_dataset("params/w2", data=np.ones(3)), "unexpected network parameters"),
        "labels": (lambda f: f.attrs.__setitem__("label_names", '["teff"]'), "label_names"),
        "json": (lambda f: f.attrs.__setitem__("architecture", "{kind"), "not valid JSON"),
    }
    for name, (edit, message) in cases.items():
        path = edited(name, edit)
        with pytest.raises(ValueError, match=message) as info:
            Emulator.load(path)
        assert str(path) in str(info.value), name
