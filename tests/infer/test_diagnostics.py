"""r_hat, bulk and tail ESS against ArviZ; mode grouping and Laplace mode masses."""

import numpy as np
import pytest

from jaxspec.infer.diagnostics import ess_bulk, ess_tail, find_modes, mode_log_mass, rhat


def _ar1(rng, chains=4, draws=500, phi=0.6):
    x = np.zeros((chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=chains)
    return x


def test_against_arviz():
    az = pytest.importorskip("arviz")
    x = _ar1(np.random.default_rng(1))
    assert rhat(x) == pytest.approx(float(az.rhat(x)), abs=2e-3)
    assert ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=0.05)
    assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=0.05)


def test_rhat_sees_disagreeing_chains_and_constant_draws_are_nan():
    x = _ar1(np.random.default_rng(2))
    x[0] += 3.0
    assert rhat(x) > 1.1
    assert np.isnan(rhat(np.ones((4, 100)))) and np.isnan(ess_bulk(np.ones((4, 100))))
    with pytest.raises(ValueError, match="chains, draws"):
        rhat(np.ones(10))


def test_find_modes():
    rng = np.random.default_rng(3)
    rv = np.concatenate([rng.normal(-10, 1, (2, 200)), rng.normal(10, 1, (2, 200))])
    q = rng.normal(0.8, 0.02, (4, 200))
    modes = find_modes({"rv_1": rv, "flux_ratio": q}, ("rv_1", "rv_2", "flux_ratio"))
    assert modes.tolist() == [0, 0, 1, 1]
    one = find_modes({"rv_1": rng.normal(0, 1, (4, 200))}, ("rv_1",))
    assert one.tolist() == [0, 0, 0, 0]
    three = find_modes({"rv_1": np.concatenate([rv[:1] - 20, rv])}, ("rv_1",))
    assert three.tolist() == [2, 0, 0, 1, 1] or three.tolist() == [2, 1, 1, 0, 0]


def test_mode_log_mass_is_exact_for_a_gaussian():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(4)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    z = rng.multivariate_normal([1.0, -1.0], cov, 4000)
    lp = np.log(0.3) + multivariate_normal([1.0, -1.0], cov).logpdf(z)
    assert mode_log_mass(z, lp) == pytest.approx(np.log(0.3), abs=0.05)
