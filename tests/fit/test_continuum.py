"""Continuum by variable projection: exact recovery, segments from gaps, masked pixels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxspec.fit.continuum import continuum_design, find_segments, solve_continuum


def _apogee_like_wave():
    # Three chips with gaps, uniform in log10 lambda (6e-6 dex) inside each.
    chips = [(15150.0, 15800.0), (15860.0, 16430.0), (16480.0, 16950.0)]
    return np.concatenate([10 ** np.arange(np.log10(a), np.log10(b), 6e-6) for a, b in chips])


def test_segments_from_gaps():
    wave = _apogee_like_wave()
    seg = find_segments(wave)
    assert seg.max() == 2 and seg[0] == 0 and seg[-1] == 2
    assert np.all(np.diff(seg) >= 0)
    assert np.sum(np.diff(seg)) == 2
    assert find_segments(np.linspace(5000, 5100, 500)).max() == 0


def test_recovers_a_known_continuum_per_segment():
    wave = _apogee_like_wave()
    rng = np.random.default_rng(0)
    model = 1.0 - 0.5 * rng.uniform(size=wave.size) ** 8  # lines
    design = continuum_design(wave, degree=2)
    assert design.shape == (wave.size, 9)
    true_coef = rng.normal(0.0, 0.05, 9)
    true_coef[::3] += 1.0
    cont = design @ true_coef
    data = model * cont
    ivar = np.ones_like(data)
    got, coef = jax.jit(solve_continuum)(jnp.asarray(model), jnp.asarray(data), jnp.asarray(ivar),
                                         jnp.asarray(design))
    # float32 normal equations: 1e-4 relative on a continuum of order 1.
    np.testing.assert_allclose(got, cont, rtol=2e-4)
    np.testing.assert_allclose(coef, true_coef, atol=2e-3)


def test_masked_segment_stays_flat_and_gradient_is_finite():
    wave = _apogee_like_wave()
    design = jnp.asarray(continuum_design(wave, degree=1))
    seg = find_segments(wave)
    model = jnp.ones(wave.size)
    data = jnp.full(wave.size, 1.2)
    ivar = jnp.asarray(np.where(seg == 1, 0.0, 1.0))
    cont, _ = solve_continuum(model, data, ivar, design)
    cont = np.asarray(cont)
    assert np.allclose(cont[seg == 1], 1.0, atol=1e-3)  # no data: unit continuum
    assert np.allclose(cont[seg != 1], 1.2, atol=1e-3)
    g = jax.grad(lambda m: jnp.sum(solve_continuum(m, data, ivar, design)[0]))(model)
    assert np.all(np.isfinite(np.asarray(g)))


def test_bad_input():
    with pytest.raises(ValueError, match="degree"):
        continuum_design(np.linspace(5000, 5100, 10), degree=-1)
    with pytest.raises(ValueError, match="segments"):
        continuum_design(np.linspace(5000, 5100, 10), segments=np.zeros(9))
    with pytest.raises(ValueError):
        find_segments(np.array([5000.0, 4999.0, 5001.0]))


def test_degree_per_segment_and_layout():
    from jaxspec.fit.continuum import continuum_layout

    wave = _apogee_like_wave()
    design = continuum_design(wave, (1, 3, 0))
    pix, cseg, cdeg, deg = continuum_layout(wave, (1, 3, 0))
    assert design.shape == (wave.size, 2 + 4 + 1) and tuple(deg) == (1, 3, 0)
    assert tuple(cseg) == (0, 0, 1, 1, 1, 1, 2) and tuple(cdeg) == (0, 1, 0, 1, 2, 3, 0)
    np.testing.assert_array_equal(pix, find_segments(wave))
    # segment 1's columns are the degree-3 design of that segment alone
    full = continuum_design(wave, 3)
    np.testing.assert_array_equal(design[:, 2:6], full[:, 4:8])
    assert np.all(design[pix != 1][:, 2:6] == 0)
    with pytest.raises(ValueError, match="2 values for 3 segments"):
        continuum_design(wave, (1, 2))
    with pytest.raises(ValueError, match=">= 0"):
        continuum_design(wave, (1, -1, 2))


def test_bic_chooses_the_degree_each_segment_needs():
    # data = lines x a polynomial of degree (0, 2, 5) per segment, S/N 200: the BIC (chi2 +
    # (g + 1) ln n) picks each segment's true degree. A missing order costs chi2 >> ln n ~ 12
    # per pixel set here, an unneeded one gains ~1: so the choice is exact, not just >=.
    from jaxspec.fit.continuum import AUTO_MAX_DEGREE, choose_degrees, continuum_layout

    wave = _apogee_like_wave()
    rng = np.random.default_rng(3)
    model = 1.0 - 0.5 * rng.uniform(size=wave.size) ** 8
    pix, cseg, cdeg, _ = continuum_layout(wave, AUTO_MAX_DEGREE)
    design = continuum_design(wave, AUTO_MAX_DEGREE)
    truth_deg = (0, 2, 5)
    coef = [np.array([1.0]), np.array([1.0, 0.3, -0.2]), np.array([1.0, 0.2, -0.3, 0.1, 0.08, -0.06])]
    cont = np.empty(wave.size)
    for s, c in enumerate(coef):
        sel = pix == s
        w = wave[sel]
        x = 2.0 * (w - w[0]) / (w[-1] - w[0]) - 1.0  # as the design maps the segment
        cont[sel] = np.polynomial.chebyshev.chebval(x, c) * 1e3  # raw counts
    err = np.sqrt(model * cont) / 200.0 * np.sqrt(1e3)
    data = model * cont + rng.normal(size=wave.size) * err
    deg, mask = choose_degrees(jnp.asarray(model), jnp.asarray(data), jnp.asarray(1 / err**2), jnp.asarray(design),
                               pix, cseg, cdeg, 3)
    assert tuple(np.asarray(deg)) == truth_deg
    np.testing.assert_array_equal(np.asarray(mask), cdeg <= np.asarray(truth_deg)[cseg])
