"""Log-lambda grids, wavelength validation and the linear resampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxspec.physics import (
    Resampler,
    check_wavelengths,
    grid_step,
    log_lambda_grid,
    make_resampler,
    resample,
)
from jaxspec.physics.constants import C_KMS


def test_log_lambda_grid_uniform():
    wave = log_lambda_grid(5000.0, 5100.0, pixel_kms=2.0)
    assert wave.dtype == np.float64
    assert wave[0] == 5000.0
    assert wave[-1] >= 5100.0 and wave[-2] < 5100.0
    dln = np.diff(np.log(wave))
    np.testing.assert_allclose(dln, 2.0 / C_KMS, rtol=1e-9)
    assert grid_step(wave) == pytest.approx(2.0 / C_KMS, rel=1e-12)
    # a float32 copy of the grid is still recognised as uniform
    assert grid_step(wave.astype(np.float32)) == pytest.approx(2.0 / C_KMS, rel=1e-3)


@pytest.mark.parametrize(
    "args",
    [
        (5100.0, 5000.0),
        (0.0, 5000.0),
        (-1.0, 5000.0),
        (np.nan, 5000.0),
        (5000.0, np.inf),
        (5000.0, 5100.0, 0.0),
        (5000.0, 5100.0, -1.0),
    ],
)
def test_log_lambda_grid_errors(args):
    with pytest.raises(ValueError):
        log_lambda_grid(*args)


def test_grid_step_errors():
    with pytest.raises(ValueError, match="uniform"):
        grid_step(np.linspace(5000.0, 5100.0, 100))  # uniform in lambda, not ln lambda
    with pytest.raises(ValueError, match="at least 2"):
        grid_step([5000.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        grid_step(log_lambda_grid(5000.0, 5100.0)[::-1])


def test_check_wavelengths_messages():
    good = np.linspace(4000.0, 5000.0, 30)
    out = check_wavelengths(good)
    assert out.dtype == np.float64
    bad = good.copy()
    bad[17] = bad[16]
    with pytest.raises(ValueError, match=r"wave is not strictly increasing \(first at index 17"):
        check_wavelengths(bad)
    bad = good.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="not finite.*index 5"):
        check_wavelengths(bad)
    with pytest.raises(ValueError, match="positive"):
        check_wavelengths(np.array([-1.0, 2.0]))
    with pytest.raises(ValueError, match="1-D"):
        check_wavelengths(np.ones((2, 3)), "obs_wave")
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(check_wavelengths)(good)


def _setup():
    model_wave = log_lambda_grid(5000.0, 5050.0, pixel_kms=1.0)
    rng = np.random.default_rng(1)
    flux = 1.0 - 0.5 * rng.random((3, model_wave.size))
    obs_wave = np.sort(rng.uniform(model_wave[0], model_wave[-1], 700))
    obs_wave = np.concatenate([[model_wave[0]], obs_wave, [model_wave[-1]]])
    return model_wave, flux, obs_wave


def test_resample_matches_numpy_interp():
    model_wave, flux, obs_wave = _setup()
    res = make_resampler(model_wave, obs_wave)
    assert isinstance(res, Resampler)
    assert res.index.dtype == jnp.int32
    out = resample(jnp.asarray(flux, jnp.float32), res)
    assert out.shape == (3, obs_wave.size)
    ref = np.stack([np.interp(obs_wave, model_wave, f) for f in flux])
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-6, atol=0)
    # a pytree: jit and vmap through it, same answer
    out_jit = jax.jit(resample)(flux.astype(np.float32), res)
    np.testing.assert_allclose(np.asarray(out_jit), ref, rtol=1e-6, atol=0)
    out_vmap = jax.vmap(resample, in_axes=(0, None))(flux.astype(np.float32), res)
    np.testing.assert_allclose(np.asarray(out_vmap), ref, rtol=1e-6, atol=0)


def test_resample_gradient():
    model_wave, flux, obs_wave = _setup()
    res = make_resampler(model_wave, obs_wave[:5])
    g = jax.grad(lambda f: jnp.sum(resample(f, res)))(jnp.asarray(flux[0], jnp.float32))
    # each observed pixel distributes weight 1 over its two model pixels
    assert float(jnp.sum(g)) == pytest.approx(5.0, rel=1e-6)


def test_resampler_errors():
    model_wave, flux, obs_wave = _setup()
    with pytest.raises(ValueError, match=r"below the model grid start.*0\.5 A short"):
        make_resampler(model_wave, np.concatenate([[model_wave[0] - 0.5], obs_wave]))
    with pytest.raises(ValueError, match="above the model grid end"):
        make_resampler(model_wave, np.concatenate([obs_wave, [model_wave[-1] + 1e-3]]))
    with pytest.raises(ValueError, match="obs_wave is not strictly increasing"):
        make_resampler(model_wave, obs_wave[::-1])
    with pytest.raises(ValueError, match="obs_wave is not finite"):
        make_resampler(model_wave, np.concatenate([obs_wave, [np.nan]]))
    with pytest.raises(ValueError, match="model_wave is not strictly increasing"):
        make_resampler(model_wave[::-1], obs_wave)
    res = make_resampler(model_wave, obs_wave)
    with pytest.raises(ValueError, match="pixels of the resampler's model grid"):
        resample(flux[:, :-1], res)
