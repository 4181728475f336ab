"""Mass ratio (York regression), Keplerian velocities, orbit fits and their posteriors.

References are independent of the code under test: York et al. (2004)'s published solution of
Pearson's data with York's weights, a direct numerical minimization of the same effective-variance
chi2, Kepler's equation solved by bisection (scipy.optimize.brentq) with the textbook true anomaly.
"""

import numpy as np
import pytest
from scipy import optimize

from jaxspec.orbit import fit_orbit, keplerian_rv, mass_ratio, plot_wilson, sample_orbit, solve_kepler

# Pearson (1901) data with York (1966) weights; York et al. 2004 (Am. J. Phys. 72, 367), table I/II.
X = np.array([0.0, 0.9, 1.8, 2.6, 3.3, 4.4, 5.2, 6.1, 6.5, 7.4])
Y = np.array([5.9, 5.4, 4.4, 4.6, 3.5, 3.7, 2.8, 2.8, 2.4, 1.5])
WX = np.array([1000.0, 1000, 500, 800, 200, 80, 60, 20, 1.8, 1])
WY = np.array([1.0, 1.8, 4, 8, 20, 20, 70, 70, 100, 500])


def test_york_line_matches_the_published_pearson_solution():
    # rv_1 = intercept + slope * rv_2: Y plays rv_1, X plays rv_2
    r = mass_ratio(Y, 1 / np.sqrt(WY), X, 1 / np.sqrt(WX))
    assert r.slope == pytest.approx(-0.480533, abs=2e-5)  # York et al. 2004: b = -0.4805
    assert r.intercept == pytest.approx(5.47991, abs=2e-4)  # a = 5.4799
    assert r.q == pytest.approx(0.480533, abs=2e-5)
    # the chi2 at the solution is the minimum of the effective-variance objective
    def s(p):
        a, b = p
        return np.sum((Y - a - b * X) ** 2 / (1 / WY + b * b / WX))

    best = optimize.minimize(s, [5.0, -0.5], method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12})
    assert r.intercept == pytest.approx(best.x[0], abs=1e-4) and r.slope == pytest.approx(best.x[1], abs=1e-5)
    assert r.chi2 == pytest.approx(best.fun, rel=1e-6)
    # York et al. 2004's slope error: 0.0580 from the weights alone, 0.0710 scaled by sqrt(S / (n - 2))
    sb = np.sqrt(r.cov[1, 1])
    assert sb == pytest.approx(0.0580, abs=2e-4)
    assert sb * np.sqrt(r.chi2 / (r.n - 2)) == pytest.approx(0.0710, abs=5e-4)


def test_mass_ratio_recovers_truth_with_honest_errors():
    rng = np.random.default_rng(0)
    pulls = []
    for _ in range(300):
        q, gamma = rng.uniform(0.3, 1.0), rng.uniform(-50, 50)
        v2 = gamma + rng.uniform(-60, 60, 5)
        v1 = gamma - q * (v2 - gamma)
        s1, s2 = rng.uniform(0.3, 1.5, 5), rng.uniform(0.3, 2.0, 5)
        r = mass_ratio(v1 + rng.normal(size=5) * s1, s1, v2 + rng.normal(size=5) * s2, s2)
        pulls.append(((r.q - q) / r.q_err, (r.gamma - gamma) / r.gamma_err))
    pulls = np.array(pulls)
    # 300 draws: the pull standard deviation is 1 within about 0.1 (4 sigma of its sampling error)
    assert np.all(np.abs(np.std(pulls, axis=0) - 1.0) < 0.15)
    assert np.all(np.abs(np.mean(pulls, axis=0)) < 0.2)


def test_mass_ratio_refuses_too_little_data():
    with pytest.raises(ValueError, match=">= 3 epochs"):
        mass_ratio([1.0, 2.0], [1.0, 1.0], [3.0, 4.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="no slope"):
        mass_ratio([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [5.0, 5.1, 5.2], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="> 0"):
        mass_ratio([1.0, 2.0, 3.0], [1.0, 0.0, 1.0], [5.0, 15.0, 25.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="one length"):
        mass_ratio([1.0, 2.0, 3.0], [1.0, 1.0], [5.0, 15.0, 25.0], [1.0, 1.0, 1.0])


def _kepler_reference(t, period, e, omega, tp, k1, k2, gamma):
    m = np.mod(2 * np.pi * (t - tp) / period, 2 * np.pi)
    ea = np.array([optimize.brentq(lambda x, mm=mm: x - e * np.sin(x) - mm, 0.0, 2 * np.pi) for mm in m])
    nu = 2 * np.arctan(np.sqrt((1 + e) / (1 - e)) * np.tan(ea / 2))
    g = np.cos(nu + omega) + e * np.cos(omega)
    return gamma + k1 * g, gamma - k2 * g


@pytest.mark.parametrize("e", [0.0, 0.3, 0.7, 0.9])
def test_keplerian_rv_matches_a_bisection_solution(e):
    t = np.linspace(0.0, 20.0, 97)
    args = (7.3, e, 1.1, 2.0, 35.0, 50.0, -12.0)
    v1, v2 = (np.asarray(x, np.float64) for x in keplerian_rv(t, *args))
    r1, r2 = _kepler_reference(t, *args)
    # float32 through JAX: 1e-4 of the 50 km/s amplitude
    np.testing.assert_allclose(v1, r1, atol=5e-3)
    np.testing.assert_allclose(v2, r2, atol=5e-3)
    ea = np.asarray(solve_kepler(np.linspace(-3, 3, 50), e))
    np.testing.assert_allclose(ea - e * np.sin(ea), np.linspace(-3, 3, 50), atol=2e-5)


def _system(rng, n_epochs=10, sigma=1.0):
    period = 10 ** rng.uniform(0.0, 2.0)
    e, omega = rng.uniform(0.0, 0.6), rng.uniform(0, 2 * np.pi)
    k1 = rng.uniform(20, 60)
    q = rng.uniform(0.4, 1.0)
    truth = dict(period=period, e=e, omega=omega, tp=55000.0 + rng.uniform(0, period), k1=k1, k2=k1 / q,
                 gamma=rng.uniform(-30, 30))
    t = 55000.0 + np.sort(rng.uniform(0, 300.0, n_epochs))
    v1, v2 = (np.asarray(x, np.float64) for x in keplerian_rv(t, *truth.values()))
    s = np.full(n_epochs, sigma)
    return truth, t, v1 + rng.normal(size=n_epochs) * s, s, v2 + rng.normal(size=n_epochs) * s, s


def test_fit_orbit_recovers_periods():
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(12):
        truth, *data = _system(rng)
        f = fit_orbit(*data)
        hits += abs(f.params["period"] / truth["period"] - 1) < 0.01
        assert f.modes and f.modes[0]["period"] == pytest.approx(f.params["period"])
        assert f.dof == 2 * len(data[0]) - 7
    assert hits >= 11  # 10 epochs over 300 d, S/N of the velocities 20-60


def test_fit_orbit_bad_input():
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    v = np.array([1.0, -2.0, 3.0, 0.0, 1.0])
    s = np.ones(5)
    with pytest.raises(ValueError, match="date"):
        fit_orbit(np.full(5, np.nan), v, s, -v, s)
    with pytest.raises(ValueError, match=">= 4 dated epochs"):
        fit_orbit(t[:3], v[:3], s[:3], -v[:3], s[:3])
    with pytest.raises(ValueError, match="same date"):
        fit_orbit(np.ones(5), v, s, -v, s)
    with pytest.raises(ValueError, match="period_range"):
        fit_orbit(t, v, s, -v, s, period_range=(5.0, 1.0))


@pytest.mark.heavy
def test_sample_orbit_posterior_brackets_the_truth_and_converges():
    rng = np.random.default_rng(4)
    truth, *data = _system(rng, n_epochs=12)
    post = sample_orbit(*data, num_warmup=300, num_samples=400, num_chains=2)
    mode = post.modes[0]
    assert all(r < 1.05 for r in mode["r_hat"].values()), mode["r_hat"]
    for name in ("period", "k1", "k2"):
        lo, hi = np.quantile(post.samples[name], [0.0015, 0.9985])  # 3-sigma interval
        assert lo <= truth[name] <= hi, (name, lo, hi, truth[name])
    assert "OrbitPosterior" in post.summary()


def test_plot_wilson(tmp_path):
    rng = np.random.default_rng(2)
    v2 = rng.uniform(-50, 50, 6)
    v1 = 10.0 - 0.7 * (v2 - 10.0)
    fig = plot_wilson(v1, np.ones(6), v2, np.ones(6), path=tmp_path / "wilson.png")
    assert (tmp_path / "wilson.png").stat().st_size > 1000
    assert fig.axes[0].get_xlabel().startswith("rv")


def test_mass_ratio_with_correlated_velocity_errors_is_honest():
    # Blended lines correlate an epoch's two velocities; the York line with r_i keeps q honest.
    rng = np.random.default_rng(1)
    pulls, pulls_ignored = [], []
    for _ in range(300):
        q, gamma = rng.uniform(0.3, 1.0), rng.uniform(-50, 50)
        v2 = gamma + rng.uniform(-40, 40, 5)
        v1 = gamma - q * (v2 - gamma)
        s1, s2, rho = rng.uniform(0.5, 1.5, 5), rng.uniform(0.5, 2.0, 5), rng.uniform(0.5, 0.9, 5)
        z1, z0 = rng.normal(size=5), rng.normal(size=5)
        e1 = s1 * z1
        e2 = s2 * (rho * z1 + np.sqrt(1 - rho**2) * z0)
        r = mass_ratio(v1 + e1, s1, v2 + e2, s2, corr=rho)
        r0 = mass_ratio(v1 + e1, s1, v2 + e2, s2)
        pulls.append((r.q - q) / r.q_err)
        pulls_ignored.append((r0.q - q) / r0.q_err)
    assert abs(np.std(pulls) - 1.0) < 0.15
    assert np.std(pulls_ignored) > np.std(pulls)  # ignoring the correlation misstates the error
    with pytest.raises(ValueError, match="corr"):
        mass_ratio([1.0, 2.0, 3.0], [1, 1, 1], [5.0, 15.0, 25.0], [1, 1, 1], corr=[0.0, 1.0, 0.0])
