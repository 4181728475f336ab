"""The binary model: composition, flux ratio modes, parameter spec, gradients at the edges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxspec
from jaxspec.models import BinaryModel, ParamSpec
from jaxspec.physics import doppler_shift, make_resampler, planck, resample


@pytest.fixture(scope="module")
def em():
    return jaxspec.default_model()


@pytest.fixture(scope="module")
def wave():
    return np.arange(5000.0, 5300.0, 0.1)


THETA = {"teff_1": 5800.0, "logg_1": 4.4, "teff_2": 4700.0, "logg_2": 4.6, "feh": -0.2,
         "rv_1": -30.0, "rv_2": 45.0, "vsini_1": 5.0, "vsini_2": 0.0, "flux_ratio": 0.4}


def test_spec_names_units_bounds(em, wave):
    bm = BinaryModel(em, wave, resolution=7500.0)
    assert bm.spec.names == ("teff_1", "logg_1", "teff_2", "logg_2", "feh", "rv_1", "rv_2",
                             "vsini_1", "vsini_2", "flux_ratio")
    assert bm.spec["teff_1"].unit == "K" and bm.spec["rv_2"].unit == "km/s"
    np.testing.assert_allclose(bm.spec.bounds(["teff_2", "flux_ratio"]), [[4000, 7500], [0, 1]])
    fixed = bm.spec.with_fixed(vsini_2=0.0)
    assert "vsini_2" not in fixed.free
    z = fixed.to_unconstrained(THETA)
    back = fixed.from_unconstrained(z)
    for n in fixed.names:
        assert float(back[n]) == pytest.approx(THETA[n], rel=1e-4, abs=1e-3)
    with pytest.raises(ValueError, match="outside"):
        bm.spec.check({**THETA, "flux_ratio": 1.5})
    with pytest.raises(ValueError, match="duplicate"):
        ParamSpec(bm.spec.params + bm.spec.params[:1])


def test_composition_matches_independent_calculation(em, wave):
    """Constant mode, no LSF: (F1 + k F2)/(1 + k) from the emulator, shifted and resampled by hand."""
    bm = BinaryModel(em, wave)
    theta = {**THETA, "vsini_1": 0.0}
    dl = float(np.log(em.wave[1] / em.wave[0]))
    f1 = doppler_shift(em.flux(jnp.array([5800.0, 4.4, -0.2])), -30.0, dl)
    f2 = doppler_shift(em.flux(jnp.array([4700.0, 4.6, -0.2])), 45.0, dl)
    want = resample((f1 + 0.4 * f2) / 1.4, make_resampler(em.wave, wave))
    np.testing.assert_allclose(bm.flux(theta), want, atol=1e-6)
    c1, c2 = bm.contributions(theta)
    np.testing.assert_allclose(c1 + c2, bm.flux(theta), atol=1e-6)
    # flux_ratio -> 0 is the primary alone.
    single = resample(f1, make_resampler(em.wave, wave))
    np.testing.assert_allclose(bm.flux({**theta, "flux_ratio": 1e-9}), single, atol=1e-6)


def test_blackbody_ratio_is_flux_ratio_at_reference(em, wave):
    bm = BinaryModel(em, wave, flux_ratio_mode="blackbody", ref_wave=5150.0)
    k = np.asarray(bm.ratio(THETA))
    mw = bm.model.wave  # the model pixels the observed ones see
    assert mw.size < em.wave.size
    np.testing.assert_allclose(np.interp(5150.0, mw, k), 0.4, rtol=1e-4)
    # Cooler secondary: its share grows to the red as B(T2)/B(T1).
    ref = planck(5150.0, 4700.0) / planck(5150.0, 5800.0)
    expect = 0.4 * (planck(mw, 4700.0) / planck(mw, 5800.0)) / ref
    np.testing.assert_allclose(k, expect, rtol=1e-4)
    assert k[-1] > k[0]


def test_gradients_finite_at_the_edges(em, wave):
    bm = BinaryModel(em, wave, resolution=7500.0)

    def total(theta):
        return jnp.sum(bm.flux(theta))

    for edge in ({"vsini_1": 0.0, "vsini_2": 0.0}, {"flux_ratio": 1.0}, {"flux_ratio": 1e-6},
                 {"teff_1": 7500.0, "teff_2": 4000.0, "logg_1": 1.0, "logg_2": 5.0, "feh": -2.0}):
        theta = {k: jnp.asarray(v, jnp.float32) for k, v in {**THETA, **edge}.items()}
        grads = jax.grad(total)(theta)
        assert all(np.isfinite(float(g)) for g in grads.values()), edge
    # Rotation matters: vsini changes the spectrum, rv moves it.
    g = jax.grad(total)({k: jnp.asarray(v, jnp.float32) for k, v in THETA.items()})
    assert float(g["rv_1"]) != 0.0


def test_bad_input(em, wave):
    with pytest.raises(ValueError, match="model.s wavelength range"):
        BinaryModel(em, np.arange(4900.0, 5000.0, 0.1))
    with pytest.raises(ValueError, match="increasing"):
        BinaryModel(em, wave[::-1])
    with pytest.raises(ValueError, match="flux_ratio_mode"):
        BinaryModel(em, wave, flux_ratio_mode="model")
    with pytest.raises(ValueError, match="shared"):
        BinaryModel(em, wave, shared=("alpha_fe",))


def _weighted_total(bm, names, base):
    w = jnp.asarray(np.random.default_rng(0).normal(size=bm.wave.size), jnp.float32)

    def f(v):
        return jnp.sum(w * bm.flux({**base, **dict(zip(names, v, strict=True))}))

    return f


@pytest.mark.parametrize("edge", [
    {"vsini_1": 0.0, "vsini_2": 0.0},
    {"flux_ratio": 1.0},
    {"flux_ratio": 0.0},
    {"teff_1": 7500.0, "teff_2": 4000.0, "logg_1": 5.0, "logg_2": 1.0, "feh": -2.0},
])
def test_check_grads_at_the_edges(em, wave, edge):
    """jax.test_util.check_grads (forward and reverse, first order) at vsini = 0, the flux-ratio
    bounds and the label bounds. float32 finite differences: eps and tolerances sized for them
    (the steps stay inside the rotation kernel's analytic small-vsini branch)."""
    from jax.test_util import check_grads

    bm = BinaryModel(em, wave, resolution=7500.0)
    base = {k: jnp.asarray(v, jnp.float32) for k, v in {**THETA, **edge}.items()}
    names = list(edge) + ["rv_1"]
    f = _weighted_total(bm, names, base)
    v0 = jnp.asarray([base[n] for n in names], jnp.float32)
    g = jax.grad(f)(v0)
    assert np.all(np.isfinite(np.asarray(g)))
    # one-sided edges: probe with steps that stay inside the bounds
    scale = jnp.asarray([{"teff_1": 100.0, "teff_2": 100.0}.get(n, 1.0) for n in names], jnp.float32)
    check_grads(lambda u: f(v0 + scale * u), (jnp.zeros_like(v0),), order=1, modes=("fwd", "rev"),
                eps=1e-2, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("mode,res", [("constant", 7500.0), ("blackbody", 7500.0), ("constant", "ramp")])
def test_structured_jacobian_matches_jacfwd(em, wave, mode, res):
    if res == "ramp":
        res = np.linspace(6000.0, 9000.0, wave.size)
    bm = BinaryModel(em, wave, resolution=res, flux_ratio_mode=mode)
    names = bm.spec.free
    theta = {k: jnp.asarray(v, jnp.float32) for k, v in THETA.items()}
    m, jt = bm.flux_and_jacobian(theta)
    ref = jax.jacfwd(lambda v: bm.flux({**theta, **dict(zip(names, v, strict=True))}))(
        jnp.stack([theta[n] for n in names]))
    np.testing.assert_allclose(m, bm.flux(theta), atol=1e-6)
    scale = np.abs(np.asarray(ref)).max(axis=0) + 1e-12
    np.testing.assert_allclose(np.asarray(jt).T / scale, np.asarray(ref) / scale, atol=1e-5)


@pytest.mark.parametrize("fixed", [{}, {"vsini_2": 0.0}, {"rv_1": 12.0}, {"vsini_1": 0.0, "vsini_2": 0.0}])
def test_paired_and_separate_stars_agree(em, wave, fixed):
    """Both stars through one vmapped evaluation (where their free parameters correspond) give
    the flux and Jacobian of evaluating each star on its own; the separate path is taken where
    they do not (one star rotating, one velocity fixed)."""
    bm = BinaryModel(em, wave, resolution=7500.0, fixed=fixed)
    theta = {k: jnp.asarray(fixed.get(k, v), jnp.float32) for k, v in THETA.items()}
    m, jt = bm.flux_and_jacobian(theta)
    separate = BinaryModel(em, wave, resolution=7500.0, fixed=fixed)
    separate._pairable = lambda: False
    m2, jt2 = separate.flux_and_jacobian(theta)
    np.testing.assert_allclose(np.asarray(m), np.asarray(m2), atol=1e-6)
    scale = np.abs(np.asarray(jt2)).max(axis=1, keepdims=True) + 1e-12
    # float32: the two programs fuse differently (measured max 1.1e-5 of a column's largest)
    np.testing.assert_allclose(np.asarray(jt) / scale, np.asarray(jt2) / scale, atol=3e-5)
    f, c1, c2 = bm.flux_and_contributions(theta)
    np.testing.assert_allclose(np.asarray(f), np.asarray(separate.flux(theta)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(c1 + c2), np.asarray(f), atol=1e-6)
    paired = {"vsini_2": 0.0} != fixed
    assert bm._pairable() == paired


def test_segmented_grid_and_model_mode():
    """A model grid of two uniform segments (like APOGEE's chips) and an unnormalized model."""
    from jaxspec.models.binary import uniform_segments

    g = np.exp(np.log(5000.0) + 1e-5 * np.arange(2000))
    w2 = np.exp(np.log(g[-1]) + 1e-5 * (np.arange(1500) + 300))
    mw = np.concatenate([g, w2])
    segs, step = uniform_segments(mw)
    assert segs == [(0, 2000), (2000, 3500)] and step == pytest.approx(1e-5, rel=1e-6)
    with pytest.raises(ValueError, match="not uniform"):
        uniform_segments(np.concatenate([g, g[-1] * (1 + 1.5e-5) * np.exp(1e-5 * np.arange(10))]))

    class Toy:
        """Two Gaussian lines whose depth depends on teff; continuum ~ teff^4 lambda^-1 (unnormalized)."""

        label_names = ("teff", "logg", "feh")
        label_bounds = np.array([[4000.0, 7000.0], [1.0, 5.0], [-1.0, 0.5]])
        wave = mw

        def flux(self, labels):
            x = jnp.asarray(mw)
            depth = 0.5 * (labels[0] / 7000.0) * (1 + 0.1 * labels[2])
            return 1.0 - depth * (jnp.exp(-0.5 * ((x - 5050.0) / 0.1) ** 2)
                                  + jnp.exp(-0.5 * ((x - mw[2600]) / 0.1) ** 2))

    class ToyUnnorm:
        label_names = ("teff",)
        label_bounds = np.array([[4000.0, 7000.0]])
        wave = mw

        def flux(self, labels):
            return (labels[0] / 5000.0) ** 4 * (5000.0 / jnp.asarray(mw)) ** (labels[0] / 2000.0)

    obs = mw[50:-50]
    bm = BinaryModel(Toy(), obs, flux_ratio_mode="model", unnormalized=ToyUnnorm(), ref_wave=5100.0)
    th = {"teff_1": 6000.0, "logg_1": 4.0, "teff_2": 4500.0, "logg_2": 4.5, "feh": 0.0, "rv_1": 20.0,
          "rv_2": -30.0, "vsini_1": 0.0, "vsini_2": 0.0, "flux_ratio": 0.5}
    k = np.asarray(bm.ratio(th))
    assert np.interp(5100.0, mw, k) == pytest.approx(0.5, rel=2e-3)
    p = 4500 / 2000 - 6000 / 2000
    want = 0.5 * (5000.0 / mw) ** p / (5000.0 / 5100.0) ** p
    np.testing.assert_allclose(k, want, rtol=2e-3)  # a smooth continuum: the cubic fit is close
    f = np.asarray(bm.flux(th))
    assert np.all(np.isfinite(f))
    # each line moves with its star's velocity, in both segments
    c = 299792.458
    for line in (5050.0, mw[2600]):
        for rv in (20.0, -30.0):
            i = np.argmin(np.abs(obs - line * (1 + rv / c)))
            assert f[i] < 0.95
    with pytest.raises(ValueError, match="unnormalized"):
        BinaryModel(Toy(), obs, flux_ratio_mode="model")


def test_segmented_shift_equals_per_segment_doppler_shift():
    """One gather with per-segment clipping equals doppler_shift on every segment separately."""
    g = np.exp(np.log(5000.0) + 1e-5 * np.arange(400))
    mw = np.concatenate([g, np.exp(np.log(g[-1]) + 1e-5 * (np.arange(300) + 200))])

    class Flat:
        label_names = ("teff",)
        label_bounds = np.array([[4000.0, 7000.0]])
        wave = mw

        def flux(self, labels):
            return jnp.ones(mw.size)

    bm = BinaryModel(Flat(), mw[10:-10], shared=())
    f = jnp.asarray(np.random.default_rng(1).normal(size=mw.size), jnp.float32)
    for rv in (-123.4, -3.0, 0.0, 2.2, 250.0):
        want = np.concatenate([doppler_shift(f[a:b], rv, bm.dlnlam) for a, b in bm.segments])
        np.testing.assert_allclose(bm._shift_segments(f, jnp.float32(rv)), want, atol=1e-6)


def test_crop_to_what_the_observed_pixels_see(em):
    """A narrow observed window: the model is evaluated on fewer pixels, with the same flux and
    Jacobian on the observed ones, at the largest shifts and rotation the bounds allow."""
    narrow = np.arange(5120.0, 5160.0, 0.1)
    theta = {**THETA, "rv_1": -395.0, "rv_2": 399.0, "vsini_1": 299.0, "vsini_2": 3.0}
    for kw in ({"resolution": 7500.0}, {"resolution": np.linspace(5000.0, 9000.0, narrow.size)}, {}):
        full = BinaryModel(em, narrow, rv_max=400.0, crop=False, **kw)
        crop = BinaryModel(em, narrow, rv_max=400.0, **kw)
        assert full.model.wave.size == em.n_pix
        assert crop.model.wave.size < em.n_pix / 2 and type(crop.model) is type(em)
        np.testing.assert_allclose(crop.flux(theta), full.flux(theta), atol=2e-6)
        (_, j1), (_, j2) = full.flux_and_jacobian(theta), crop.flux_and_jacobian(theta)
        np.testing.assert_allclose(j2, j1, atol=2e-6 * float(jnp.max(jnp.abs(j1))))
    # the observed range at the grid's edge: nothing to crop on that side
    edge = em.wave[em.wave < 5000.0]
    bm = BinaryModel(em, edge, rv_max=400.0)
    assert bm.model.wave[0] == em.wave[0] and bm.model.wave.size < em.n_pix


def test_crop_of_a_segmented_model_without_restrict():
    """A model without ``restrict`` is sliced; segments the observed pixels do not reach are dropped."""
    g = np.exp(np.log(5000.0) + 1e-5 * np.arange(3000))
    mw = np.concatenate([g, np.exp(np.log(g[-1]) + 1e-5 * (np.arange(3000) + 300))])

    class Lines:
        label_names = ("teff",)
        label_bounds = np.array([[4000.0, 7000.0]])
        wave = mw

        def flux(self, labels):
            x = jnp.asarray(mw)
            return 1.0 - 0.5 * (labels[0] / 7000.0) * jnp.sum(
                jnp.exp(-0.5 * ((x[:, None] - mw[jnp.arange(100, 6000, 250)]) / 0.05) ** 2), axis=1)

    th = {"teff_1": 6000.0, "teff_2": 4500.0, "rv_1": 60.0, "rv_2": -80.0, "vsini_1": 20.0,
          "vsini_2": 5.0, "flux_ratio": 0.6}
    for obs in (mw[3400:4000], mw[2500:3600]):  # inside the second segment; across the gap
        full = BinaryModel(Lines(), obs, shared=(), rv_max=100.0, vsini_max=50.0, resolution=20000.0,
                           crop=False)
        crop = BinaryModel(Lines(), obs, shared=(), rv_max=100.0, vsini_max=50.0, resolution=20000.0)
        assert crop.model.wave.size < mw.size
        assert len(crop.segments) == (1 if obs[0] > mw[3000] else 2)
        np.testing.assert_allclose(crop.flux(th), full.flux(th), atol=2e-6)
