"""TODCOR surface: finds the true velocity pair and flux ratio of a simulated SB2."""

import jax
import jax.numpy as jnp
import numpy as np

import jaxspec
from jaxspec.fit.todcor import best_peaks, todcor
from jaxspec.physics import apply_lsf, doppler_shift, make_resampler, resample


def test_todcor_recovers_velocities_and_ratio():
    em = jaxspec.default_model()
    wave = np.arange(5000.0, 5300.0, 0.1)
    dl = float(np.log(em.wave[1] / em.wave[0]))
    res = make_resampler(em.wave, wave)
    t1 = em.flux(jnp.array([5800.0, 4.4, 0.0]))
    t2 = em.flux(jnp.array([4700.0, 4.6, 0.0]))

    def observe(t, rv):
        return resample(apply_lsf(doppler_shift(t, rv, dl), 7500.0, dl), res)

    k = 0.4
    data = (observe(t1, -32.0) + k * observe(t2, 41.0)) / (1 + k)
    data = np.asarray(data) + np.random.default_rng(0).normal(0, 0.01, wave.size)
    ivar = np.full(wave.size, 1e4)
    rv = jnp.arange(-150.0, 151.0, 3.0)
    s1 = jax.vmap(lambda v: observe(t1, v))(rv)
    s2 = jax.vmap(lambda v: observe(t2, v))(rv)
    out = jax.jit(todcor)(s1, s2, jnp.asarray(data), jnp.asarray(ivar), rv)
    peaks = best_peaks(out, n=3)
    best = peaks[0]
    # Grid step 3 km/s: the best grid point is within one step of the truth.
    assert abs(best["rv_1"] + 32.0) <= 3.0 and abs(best["rv_2"] - 41.0) <= 3.0
    assert abs(best["flux_ratio"] - k) < 0.1
    assert len(peaks) == 3 and peaks[0]["chi2"] <= peaks[1]["chi2"] <= peaks[2]["chi2"]
    # A single star (k = 0) has no second component: the best b is ~0.
    single = jax.jit(todcor)(s1, s2, jnp.asarray(observe(t1, 10.0)), jnp.asarray(ivar), rv)
    i = int(np.argmin(np.abs(np.asarray(rv) - 10.0)))
    assert float(jnp.min(single.chi2[i])) < 1e-3 * float(jnp.max(single.chi2))
