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
    mw = em.wave
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
    with pytest.raises(ValueError, match="inside the model grid"):
        BinaryModel(em, np.arange(4900.0, 5000.0, 0.1))
    with pytest.raises(ValueError, match="increasing"):
        BinaryModel(em, wave[::-1])
    with pytest.raises(ValueError, match="flux_ratio_mode"):
        BinaryModel(em, wave, flux_ratio_mode="model")
    with pytest.raises(ValueError, match="shared"):
        BinaryModel(em, wave, shared=("alpha_fe",))
