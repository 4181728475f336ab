"""Dynamical mass ratio and Keplerian orbits from the radial velocities of both stars.

* :func:`mass_ratio`: the Wilson (1941) regression ``rv_1 = gamma (1 + q) - q rv_2`` of the
  per-epoch velocity pairs, a straight line with errors in both coordinates (York et al.
  2004, "Unified equations for the slope, intercept, and standard errors of the best straight
  line", Am. J. Phys. 72, 367), giving ``q = M_2 / M_1 = K_1 / K_2`` and the systemic
  velocity without knowing the period.
* :func:`keplerian_rv`: both stars' velocities on an orbit (jitted, differentiable; Kepler's
  equation by a fixed number of Newton steps).
* :func:`fit_orbit`: a period search (a Keplerian periodogram of both stars' velocities
  combined through q and gamma: eccentricity and phase on a grid, the rest solved linearly) followed by batched Levenberg-Marquardt fits of
  the full orbit from a grid of starts at every periodogram peak; distinct periods whose best
  chi2 lies within ``delta_chi2`` of the best are reported as modes.
* :func:`sample_orbit`: NumPyro NUTS posteriors of the orbit, chains started in every mode,
  each mode summarized on its own.

Conventions: times in days (MJD or BJD; the orbit does not care which, as long as one is
used throughout), velocities in km/s, ``omega`` the argument of periastron of star 1 [rad],
``tp`` a time of periastron [d]. ``rv_1 = gamma + K_1 (cos(nu + omega) + e cos omega)``,
``rv_2 = gamma - K_2 (cos(nu + omega) + e cos omega)``.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MassRatio", "OrbitFit", "OrbitPosterior", "fit_orbit", "keplerian_rv", "mass_ratio",
           "plot_wilson", "sample_orbit", "solve_kepler"]

ORBIT_NAMES = ("period", "e", "omega", "tp", "k1", "k2", "gamma")
ORBIT_UNITS = {"period": "d", "e": "", "omega": "rad", "tp": "d", "k1": "km/s", "k2": "km/s",
               "gamma": "km/s", "q": ""}


# ---------------------------------------------------------------------- mass ratio


@dataclasses.dataclass(frozen=True)
class MassRatio:
    """Result of :func:`mass_ratio`.

    Attributes:
        q, q_err: mass ratio ``M_2 / M_1`` (minus the slope of rv_1 against rv_2) and its
            1-sigma error.
        gamma, gamma_err: systemic velocity [km/s] (where the line crosses rv_1 = rv_2).
        slope, intercept: the fitted line ``rv_1 = intercept + slope rv_2`` [-, km/s].
        cov: (2, 2) covariance of (intercept, slope).
        chi2: the weighted sum of squared distances to the line; n: number of epochs
            (dof = n - 2).
    """

    q: float
    q_err: float
    gamma: float
    gamma_err: float
    slope: float
    intercept: float
    cov: np.ndarray
    chi2: float
    n: int

    def __repr__(self) -> str:
        return (f"MassRatio(q={self.q:.4f} +- {self.q_err:.4f}, gamma={self.gamma:.3f} +- "
                f"{self.gamma_err:.3f} km/s, chi2={self.chi2:.2f} for {self.n - 2} dof)")


def _york(x, sx, y, sy, r=None, n_iter=100, tol=1e-12):
    """York et al. (2004) best straight line y = a + b x with errors sx, sy correlated by r
    (per point; None = uncorrelated); returns (a, b, cov of (a, b), S)."""
    wx, wy = 1.0 / sx**2, 1.0 / sy**2
    r = np.zeros_like(x) if r is None else np.asarray(r, dtype=np.float64)
    al = np.sqrt(wx * wy)
    b = np.polyfit(x, y, 1, w=np.sqrt(wy))[0]

    def weights(b):
        return wx * wy / (wx + b * b * wy - 2.0 * b * r * al)

    def betas(b, w, xb, yb):
        u, v = x - xb, y - yb
        return w * (u / wy + b * v / wx - (b * u + v) * r / al)

    for _ in range(n_iter):
        w = weights(b)
        xb, yb = np.sum(w * x) / np.sum(w), np.sum(w * y) / np.sum(w)
        beta = betas(b, w, xb, yb)
        b_new = np.sum(w * beta * (y - yb)) / np.sum(w * beta * (x - xb))
        done = abs(b_new - b) <= tol * (1.0 + abs(b))
        b = b_new
        if done:
            break
    w = weights(b)
    xb, yb = np.sum(w * x) / np.sum(w), np.sum(w * y) / np.sum(w)
    a = yb - b * xb
    xa = xb + betas(b, w, xb, yb)
    xab = np.sum(w * xa) / np.sum(w)
    var_b = 1.0 / np.sum(w * (xa - xab) ** 2)
    var_a = 1.0 / np.sum(w) + xab**2 * var_b
    cov = np.array([[var_a, -xab * var_b], [-xab * var_b, var_b]])
    s = float(np.sum(w * (y - b * x - a) ** 2))
    return float(a), float(b), cov, s


def mass_ratio(rv_1, err_1, rv_2, err_2, corr=None) -> MassRatio:
    """Mass ratio and systemic velocity from per-epoch velocity pairs (the Wilson plot).

    Fits ``rv_1 = gamma (1 + q) - q rv_2`` with errors in both velocities (York et al. 2004;
    the errors are used as given, not rescaled by chi2: compare ``chi2`` with ``n - 2``).

    Args:
        rv_1, err_1: (E,) velocities of star 1 and 1-sigma errors [km/s].
        rv_2, err_2: (E,) velocities of star 2 and errors [km/s].
        corr: (E,) correlation coefficient of each epoch's rv_1 and rv_2 errors (a joint
            spectral fit gives one: blended lines correlate the two velocities); None = 0.

    Returns:
        :class:`MassRatio`.

    Raises:
        ValueError: fewer than 3 finite epochs, shapes that differ, errors <= 0, or velocities
            that do not change between epochs (no slope to fit).
    """
    arrs = [np.asarray(a, dtype=np.float64).ravel() for a in (rv_1, err_1, rv_2, err_2)]
    arrs.append(np.zeros_like(arrs[0]) if corr is None else np.asarray(corr, dtype=np.float64).ravel())
    if len({a.size for a in arrs}) != 1:
        raise ValueError(f"rv_1, err_1, rv_2, err_2 (and corr) must have one length, got {[a.size for a in arrs]}")
    ok = np.all([np.isfinite(a) for a in arrs], axis=0)
    v1, s1, v2, s2, rho = (a[ok] for a in arrs)
    if np.any(np.abs(rho) >= 1.0):
        raise ValueError("corr must lie in (-1, 1)")
    if v1.size < 3:
        raise ValueError(f"the mass ratio needs >= 3 epochs with finite velocities and errors, got {v1.size}")
    if np.any(s1 <= 0) or np.any(s2 <= 0):
        raise ValueError("velocity errors must be > 0")
    if np.ptp(v2) <= 3.0 * np.median(s2):
        raise ValueError(f"rv_2 spans only {np.ptp(v2):.2f} km/s over the epochs (errors "
                         f"{np.median(s2):.2f} km/s): no slope to measure q from")
    a, b, cov, s = _york(v2, s2, v1, s1, rho)
    q = -b
    gamma = a / (1.0 - b)
    grad = np.array([1.0 / (1.0 - b), a / (1.0 - b) ** 2])
    return MassRatio(q=float(q), q_err=float(math.sqrt(cov[1, 1])), gamma=float(gamma),
                     gamma_err=float(math.sqrt(grad @ cov @ grad)), slope=float(b), intercept=float(a),
                     cov=cov, chi2=s, n=int(v1.size))


def plot_wilson(rv_1, err_1, rv_2, err_2, result: MassRatio | None = None, path=None):
    """The Wilson plot: rv_1 against rv_2 with error bars and the fitted line.

    Args:
        rv_1, err_1, rv_2, err_2: (E,) velocities and errors [km/s].
        result: a :class:`MassRatio` (default: :func:`mass_ratio` of the data).
        path: where to save the figure (any matplotlib format); None only returns it.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    result = mass_ratio(rv_1, err_1, rv_2, err_2) if result is None else result
    fig, ax = plt.subplots(figsize=(4.5, 4.0))
    ax.errorbar(rv_2, rv_1, xerr=err_2, yerr=err_1, fmt="o", ms=4, color="k", lw=1)
    x = np.linspace(np.nanmin(rv_2) - 5, np.nanmax(rv_2) + 5, 2)
    ax.plot(x, result.intercept + result.slope * x, color="C0",
            label=f"q = {result.q:.3f} $\\pm$ {result.q_err:.3f}\n$\\gamma$ = {result.gamma:.2f} km/s")
    ax.plot(x, x, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("rv$_2$ [km/s]")
    ax.set_ylabel("rv$_1$ [km/s]")
    ax.legend(frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


# ---------------------------------------------------------------------- Keplerian model


def solve_kepler(mean_anomaly, e, n_iter: int = 12):
    """Eccentric anomaly E from ``E - e sin E = M`` (Newton steps from a Danby-style start).

    Args:
        mean_anomaly: (...) mean anomaly M [rad]; e: eccentricity in [0, 1).
        n_iter: Newton steps (static; 12 reach float64 round-off for e <= 0.95).

    Returns:
        (...) eccentric anomaly [rad], differentiable in M and e.
    """
    m = jnp.mod(mean_anomaly + jnp.pi, 2.0 * jnp.pi) - jnp.pi
    ecc = jnp.asarray(e, m.dtype)
    x = m + 0.85 * ecc * jnp.sign(jnp.sin(m))

    def step(_, x):
        f = x - ecc * jnp.sin(x) - m
        return x - f / (1.0 - ecc * jnp.cos(x))

    return jax.lax.fori_loop(0, n_iter, step, x)


def keplerian_rv(t, period, e, omega, tp, k1, k2, gamma):
    """Both stars' radial velocities on a Keplerian orbit.

    Args:
        t: (N,) times [d]; period [d]; e: eccentricity [0, 1); omega: argument of periastron
            of star 1 [rad]; tp: time of periastron [d]; k1, k2: semi-amplitudes [km/s];
            gamma: systemic velocity [km/s].

    Returns:
        ``(rv_1 (N,), rv_2 (N,))`` [km/s].
    """
    t = jnp.asarray(t)
    m = 2.0 * jnp.pi * (t - tp) / period
    ea = solve_kepler(m, e)
    nu = 2.0 * jnp.arctan2(jnp.sqrt(1.0 + e) * jnp.sin(0.5 * ea), jnp.sqrt(1.0 - e) * jnp.cos(0.5 * ea))
    g = jnp.cos(nu + omega) + e * jnp.cos(omega)
    return gamma + k1 * g, gamma - k2 * g


# ---------------------------------------------------------------------- fitting


@dataclasses.dataclass(frozen=True)
class OrbitFit:
    """Result of :func:`fit_orbit`.

    Attributes:
        params, errors: ``{name: value}`` of the best orbit (period [d], e, omega [rad], tp [d],
            k1, k2, gamma [km/s], and q = k1 / k2) and 1-sigma errors from the Gauss-Newton
            covariance.
        chi2: chi-square of the best orbit; n: number of velocities used; dof: n - 7.
        modes: list of ``{"period", "chi2", "params"}`` for the distinct periods (relative
            difference > ``period_tol``) whose chi2 is within ``delta_chi2`` of the best,
            best first; ``ambiguous`` is True when there is more than one.
        periodogram: ``(frequency [1/d], chi2)`` of the period search.
        t_ref: reference time [d] of the internal phase parametrization.
    """

    params: dict
    errors: dict
    chi2: float
    n: int
    dof: int
    modes: list
    periodogram: tuple
    t_ref: float

    @property
    def ambiguous(self) -> bool:
        """More than one period is consistent with the data (see ``modes``)."""
        return len(self.modes) > 1

    def __repr__(self) -> str:
        p = self.params
        return (f"OrbitFit(P={p['period']:.5g} d, e={p['e']:.3f}, K1={p['k1']:.2f}, K2={p['k2']:.2f} km/s, "
                f"q={p['q']:.3f}, gamma={p['gamma']:.2f} km/s, chi2={self.chi2:.1f}/{self.dof}, "
                f"{len(self.modes)} mode(s))")


def _prepare(t, rv_1, err_1, rv_2, err_2):
    arrs = [np.asarray(a, dtype=np.float64).ravel() for a in (t, rv_1, err_1, rv_2, err_2)]
    if len({a.size for a in arrs}) != 1:
        raise ValueError(f"t, rv_1, err_1, rv_2, err_2 must have one length, got {[a.size for a in arrs]}")
    t, v1, s1, v2, s2 = arrs
    if not np.any(np.isfinite(t)):
        raise ValueError("no epoch has a date (t is NaN everywhere): the orbit needs the MJD or BJD of "
                         "every epoch (read from the survey headers as meta['mjd'])")
    ok = np.isfinite(t) & np.isfinite(v1) & np.isfinite(s1) & np.isfinite(v2) & np.isfinite(s2)
    if np.any((s1[ok] <= 0) | (s2[ok] <= 0)):
        raise ValueError("velocity errors must be > 0")
    if ok.sum() < 4:
        raise ValueError(f"an SB2 orbit (7 parameters from 2 velocities per epoch) needs >= 4 dated epochs "
                         f"with finite velocities, got {int(ok.sum())}")
    return t[ok], v1[ok], s1[ok], v2[ok], s2[ok]


def _to_u(p, t_ref):
    """Physical orbit -> unconstrained vector (ln P, phase, h, k, ln K1, ln K2, gamma)."""
    period, e, omega, tp, k1, k2, gamma = p
    se = np.sqrt(np.clip(e, 0.0, 0.99))
    phase = 2.0 * np.pi * (t_ref - tp) / period
    return np.array([np.log(period), phase, se * np.cos(omega), se * np.sin(omega), np.log(k1),
                     np.log(k2), gamma])


def _from_u(u, t_ref):
    lp, phase, h, k, lk1, lk2, gamma = (u[..., i] for i in range(7))
    period = jnp.exp(lp)
    e = jnp.minimum(h * h + k * k, 0.95)
    omega = jnp.arctan2(k, h)
    tp = t_ref - phase * period / (2.0 * jnp.pi)
    return period, e, omega, tp, jnp.exp(lk1), jnp.exp(lk2), gamma


def _orbit_residual(u, t, v1, w1, v2, w2, t_ref):
    """Residuals weighted by ``w = 1 / sigma`` (0 for a padded epoch)."""
    r1, r2 = keplerian_rv(t, *_from_u(u, t_ref))
    # a soft wall keeps e < 0.95 (where the parametrization is clipped)
    wall = jnp.maximum(u[2] ** 2 + u[3] ** 2 - 0.95, 0.0) * 1e3
    return jnp.concatenate([(r1 - v1) * w1, (r2 - v2) * w2, wall[None]])


_GRID_E = (0.0, 0.3, 0.55, 0.75, 0.88)
_GRID_PHASE = 12


@jax.jit
def _periodogram(freq, t, y, w):
    """Keplerian periodogram: for every frequency and every cell of a grid of eccentricity and
    mean anomaly at t = 0, the velocity curve is linear in (offset, K cos omega, K sin omega), so
    chi2 follows from a 3 x 3 weighted least-squares solve (the nonlinear parameters brute-forced,
    the linear ones solved, as in The Joker, Price-Whelan et al. 2017). Star 2's rows hold
    ``-q (rv_2 - gamma)``, which follow star 1's curve.

    Returns ``(chi2 (n_f, n_e, n_phase), coef (n_f, n_e, n_phase, 3))``.
    """
    es = jnp.asarray(_GRID_E, t.dtype)
    m0 = jnp.arange(_GRID_PHASE, dtype=t.dtype) * (2.0 * jnp.pi / _GRID_PHASE)

    def one(f, e, phase):
        ea = solve_kepler(2.0 * jnp.pi * f * t + phase, e, n_iter=6)  # grid cells: 6 steps suffice
        nu = 2.0 * jnp.arctan2(jnp.sqrt(1.0 + e) * jnp.sin(0.5 * ea), jnp.sqrt(1.0 - e) * jnp.cos(0.5 * ea))
        a = jnp.stack([jnp.ones_like(t), jnp.cos(nu) + e, jnp.sin(nu)], axis=1)
        aw = a * w[:, None]
        coef = jnp.linalg.solve(a.T @ aw + 1e-9 * jnp.eye(3, dtype=t.dtype), aw.T @ y)
        r = y - a @ coef
        return jnp.sum(w * r * r), coef

    fn = jax.vmap(jax.vmap(jax.vmap(one, (None, None, 0)), (None, 0, None)), (0, None, None))
    return fn(freq, es, m0)


@jax.jit
def _fit_starts(u0, t, v1, w1, v2, w2, t_ref):
    from jaxspec.fit.lm import levenberg_marquardt

    def one(u):
        res = levenberg_marquardt(lambda z: _orbit_residual(z, t, v1, w1, v2, w2, t_ref), u,
                                  max_iter=200, ftol=1e-10, xtol=1e-12)
        return res.z, 2.0 * res.cost, res.jtj, res.finite

    return jax.vmap(one)(u0)


def fit_orbit(t, rv_1, err_1, rv_2, err_2, *, period_range=None, n_peaks: int = 12, delta_chi2: float = 9.0,
              period_tol: float = 0.01, oversample: float = 10.0) -> OrbitFit:
    """Fit a Keplerian orbit to both stars' velocities (an SB2 orbit).

    The period is searched on a frequency grid (``oversample`` points per 1 / baseline) with a
    Keplerian periodogram of ``rv_1 - gamma`` and ``-q (rv_2 - gamma)`` (q and gamma from
    :func:`mass_ratio`): at each frequency the best of a grid of eccentricities (0-0.88) and
    periastron phases (12), the semi-amplitude, omega and an offset solved linearly. From each of
    the ``n_peaks`` lowest distinct periodogram minima, Levenberg-Marquardt fits the seven orbital
    parameters from that frequency's 8 best grid cells (each also with half its eccentricity),
    all in one vmapped, jitted program.

    Args:
        t: (E,) times [d] (MJD or BJD, one kind throughout).
        rv_1, err_1, rv_2, err_2: (E,) velocities and 1-sigma errors [km/s]; epochs with a
            non-finite value are left out.
        period_range: (min, max) period [d] to search (default: 0.5 d to twice the baseline,
            at most 10,000 d).
        n_peaks: periodogram minima refined.
        delta_chi2: modes within this chi2 of the best are reported.
        period_tol: relative period difference that makes two solutions distinct modes.
        oversample: frequency grid density.

    Returns:
        :class:`OrbitFit`.

    Raises:
        ValueError: no dates, fewer than 4 usable epochs, bad errors or period range.
    """
    t, v1, s1, v2, s2 = _prepare(t, rv_1, err_1, rv_2, err_2)
    base = float(np.ptp(t))
    if base <= 0:
        raise ValueError("all epochs have the same date: no period can be measured")
    pmin, pmax = (0.5, min(2.0 * base, 1e4)) if period_range is None else map(float, period_range)
    if not (0 < pmin < pmax):
        raise ValueError(f"period_range must be 0 < min < max, got {period_range}")
    t_ref = float(np.mean(t))
    t = t - t_ref  # centred (float32 keeps the phase; ln P and phase decorrelate)
    try:
        mr = mass_ratio(v1, s1, v2, s2)
        q, gamma = (mr.q, mr.gamma) if 0.05 < mr.q < 20 else (1.0, float(np.mean(0.5 * (v1 + v2))))
    except ValueError:
        q, gamma = 1.0, float(np.mean(0.5 * (v1 + v2)))
    y = np.concatenate([v1 - gamma, -q * (v2 - gamma)])
    w = np.concatenate([1.0 / s1**2, 1.0 / (q * s2) ** 2])
    df = 1.0 / (oversample * base)
    freq = np.arange(1.0 / pmax, 1.0 / pmin + df, df)
    # fixed shapes (one compiled program for many systems): frequencies padded to a power of
    # two, epochs to a power of two (>= 8) with zero weight
    nf = freq.size
    fpad = np.concatenate([freq, np.full((1 << (nf - 1).bit_length()) - nf, freq[-1])])
    ne = t.size
    npad = max(8, 1 << (ne - 1).bit_length()) - ne
    tt = np.concatenate([t, np.zeros(npad), t, np.zeros(npad)])
    y = np.concatenate([y[:ne], np.zeros(npad), y[ne:], np.zeros(npad)])
    w = np.concatenate([w[:ne], np.zeros(npad), w[ne:], np.zeros(npad)])
    chi3, coef = (np.asarray(a)[:nf] for a in _periodogram(jnp.asarray(fpad), jnp.asarray(tt), jnp.asarray(y),
                                                             jnp.asarray(w)))
    chi = chi3.reshape(nf, -1).min(axis=1)
    # lowest local minima, at least 1 / (2 baseline) apart in frequency
    loc = np.flatnonzero((chi <= np.roll(chi, 1)) & (chi <= np.roll(chi, -1)))
    loc = loc[np.argsort(chi[loc])]
    peaks = []
    for i in loc:
        if all(abs(freq[i] - freq[j]) > 0.5 / base for j in peaks):
            peaks.append(i)
        if len(peaks) == n_peaks:
            break
    starts = []
    n_phase = _GRID_PHASE
    for i in peaks:
        period = 1.0 / freq[i]
        # the 8 best (e, mean anomaly) cells of this frequency, with their linear solution
        cells = np.argsort(chi3[i].ravel())[:8]
        for c in cells:
            ie, ip = divmod(int(c), n_phase)
            e = max(_GRID_E[ie], 0.02)
            phase = ip * 2.0 * np.pi / n_phase
            off, ca, cb = coef[i, ie, ip]
            k1 = max(float(np.hypot(ca, cb)), 0.5)
            omega = math.atan2(-cb, ca)
            tp = -phase * period / (2.0 * np.pi)
            for ee in (e, 0.5 * e + 0.01):
                starts.append(_to_u((period, ee, omega, tp, k1, k1 / q, gamma + off), 0.0))
    starts += [starts[-1]] * (16 * n_peaks - len(starts))
    u0 = jnp.asarray(np.stack(starts))
    zero = np.zeros(npad)
    args = tuple(jnp.asarray(np.concatenate([a, zero])) for a in (t, v1, 1.0 / s1, v2, 1.0 / s2))
    z, chi2, jtj, finite = (np.asarray(a) for a in _fit_starts(u0, *args, jnp.asarray(0.0)))
    chi2 = np.where(finite, chi2, np.inf)
    order = np.argsort(chi2)
    best = order[0]

    def physical(u):
        p = [float(x) for x in _from_u(jnp.asarray(u), 0.0)]
        d = dict(zip(ORBIT_NAMES, p, strict=True))
        d["tp"] += t_ref
        d["omega"] = float(np.mod(d["omega"], 2 * np.pi))
        d["q"] = d["k1"] / d["k2"]
        return d

    modes = []
    for i in order:
        if not np.isfinite(chi2[i]) or chi2[i] > chi2[best] + delta_chi2:
            break
        p = physical(z[i])
        if all(abs(p["period"] - m["period"]) > period_tol * m["period"] for m in modes):
            modes.append({"period": p["period"], "chi2": float(chi2[i]), "params": p})
    params = physical(z[best])
    # errors: the covariance of the unconstrained vector mapped to physical parameters
    ub = jnp.asarray(z[best])

    def phys_vec(u):
        period, e, omega, tp, k1, k2, gamma = _from_u(u, 0.0)
        return jnp.stack([period, e, omega, tp, k1, k2, gamma, k1 / k2])

    jac = np.asarray(jax.jacfwd(phys_vec)(ub))
    cov_u = np.linalg.pinv(jtj[best], hermitian=True)
    cov = jac @ cov_u @ jac.T
    errors = dict(zip((*ORBIT_NAMES, "q"), np.sqrt(np.maximum(np.diag(cov), 0.0)).tolist(), strict=True))
    n = 2 * t.size
    return OrbitFit(params=params, errors=errors, chi2=float(chi2[best]), n=n, dof=n - 7, modes=modes,
                    periodogram=(freq, chi), t_ref=t_ref)


# ---------------------------------------------------------------------- posterior


@dataclasses.dataclass(frozen=True)
class OrbitPosterior:
    """NumPyro posterior of an SB2 orbit (:func:`sample_orbit`).

    Attributes:
        samples: ``{name: (n_draws,)}`` draws of the most probable mode (period [d], e,
            omega [rad], tp [d], k1, k2, gamma [km/s], q), chains of that mode pooled.
        modes: one dict per mode sampled: ``{"period", "chi2", "samples", "r_hat", "ess"}``
            (samples as above; r_hat and ess per parameter over that mode's chains).
        fit: the :class:`OrbitFit` whose modes started the chains.
    """

    samples: dict
    modes: list
    fit: OrbitFit

    def interval(self, name: str, level: float = 0.68):
        """Central credible interval of a parameter of the main mode, ``(low, high)``."""
        x = np.asarray(self.samples[name])
        a = 0.5 * (1.0 - level)
        return float(np.quantile(x, a)), float(np.quantile(x, 1.0 - a))

    def summary(self) -> str:
        """Median and 68 % interval of every parameter of the main mode, and the modes' periods."""
        lines = [f"OrbitPosterior: {len(self.modes)} mode(s): "
                 + ", ".join(f"P {m['period']:.5g} d (chi2 {m['chi2']:.1f})" for m in self.modes)]
        for n in (*ORBIT_NAMES, "q"):
            lo, hi = self.interval(n)
            lines.append(f"  {n:<7} {np.median(self.samples[n]):12.6g}  [{lo:.6g}, {hi:.6g}] {ORBIT_UNITS[n]}")
        return "\n".join(lines)


def _numpyro_model(t, v1, s1, v2, s2, mask, t_ref, lp0):
    import numpyro
    import numpyro.distributions as dist

    # ln P in a window of +-0.03 around the mode's lp0 (so that a chain stays in its mode), phase,
    # sqrt(e) (cos omega, sin omega) uniform in the unit disk (e uniform), ln K uniform, gamma flat.
    # Every support is fixed: the sampler is compiled once and reused with other data (jit_model_args),
    # and NumPyro maps samples to the constrained space with the first run's supports.
    lp = lp0 + numpyro.sample("d_ln_period", dist.Uniform(-0.03, 0.03))
    phase = numpyro.sample("phase", dist.Uniform(-2 * jnp.pi, 2 * jnp.pi))
    h = numpyro.sample("h", dist.Uniform(-1.0, 1.0))
    k = numpyro.sample("k", dist.Uniform(-1.0, 1.0))
    numpyro.factor("disk", jnp.where(h * h + k * k < 0.95, 0.0, -jnp.inf))
    lk1 = numpyro.sample("ln_k1", dist.Uniform(-3.0, 7.0))
    lk2 = numpyro.sample("ln_k2", dist.Uniform(-3.0, 7.0))
    gamma = numpyro.sample("gamma", dist.Uniform(-1000.0, 1000.0))
    u = jnp.stack([lp, phase, h, k, lk1, lk2, gamma])
    r1, r2 = keplerian_rv(t, *_from_u(u, t_ref))
    ll = -0.5 * jnp.sum(mask * (((r1 - v1) / s1) ** 2 + ((r2 - v2) / s2) ** 2))
    numpyro.factor("rv", ll)


_MCMC: dict = {}


def _orbit_mcmc(npad, num_warmup, num_samples, num_chains, progress):
    """One NUTS sampler per (padded epochs, settings): later systems reuse its compiled program."""
    from numpyro.infer import MCMC, NUTS

    key = (npad, num_warmup, num_samples, num_chains, progress)
    if key not in _MCMC:
        kernel = NUTS(_numpyro_model, target_accept_prob=0.9, dense_mass=True)
        _MCMC[key] = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                          chain_method="sequential", progress_bar=progress, jit_model_args=True)
    return _MCMC[key]


def sample_orbit(t, rv_1, err_1, rv_2, err_2, *, fit: OrbitFit | None = None, num_warmup: int = 500,
                 num_samples: int = 1000, num_chains: int = 2, max_modes: int = 3, seed: int = 0,
                 progress: bool = False, **fit_kwargs) -> OrbitPosterior:
    """NUTS posterior of the orbit, sampled per mode of :func:`fit_orbit`.

    Each of the best ``max_modes`` modes gets ``num_chains`` chains started at its best fit,
    with ln P confined to +-3 % of that period (so that chains stay in their mode; a mode's
    samples are then a conditional posterior, and the modes' relative weights are not
    estimated). Epochs are padded to a power of two and masked, so systems with the same
    padded size share one compiled sampler.

    Args:
        t: (E,) times [d] (MJD or BJD, one kind throughout).
        rv_1, err_1, rv_2, err_2: (E,) velocities and 1-sigma errors [km/s], as for
            :func:`fit_orbit`.
        fit: an :class:`OrbitFit` of the same data (default: :func:`fit_orbit`).
        num_warmup, num_samples, num_chains: NUTS settings per mode.
        max_modes: modes sampled.
        seed: PRNG seed.
        progress: NumPyro's progress bar.
        **fit_kwargs: passed to :func:`fit_orbit` when ``fit`` is None.

    Returns:
        :class:`OrbitPosterior`.
    """
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer.util import unconstrain_fn

    t, v1, s1, v2, s2 = _prepare(t, rv_1, err_1, rv_2, err_2)
    fit = fit_orbit(t, v1, s1, v2, s2, **fit_kwargs) if fit is None else fit
    n = t.size
    npad = max(4, 1 << (n - 1).bit_length())
    pad = npad - n

    def padded(a, fill):
        return jnp.asarray(np.concatenate([a, np.full(pad, fill)]))

    t = t - fit.t_ref
    data = dict(t=padded(t, t[0]), v1=padded(v1, 0.0), s1=padded(s1, 1.0), v2=padded(v2, 0.0),
                s2=padded(s2, 1.0), mask=padded(np.ones(n), 0.0))
    mcmc = _orbit_mcmc(npad, num_warmup, num_samples, num_chains, progress)
    modes = []
    for m in range(min(max_modes, len(fit.modes))):
        mode = fit.modes[m]
        p = mode["params"]
        u = _to_u((p["period"], p["e"], p["omega"], p["tp"] - fit.t_ref, p["k1"], p["k2"], p["gamma"]), 0.0)
        init = dict(zip(("d_ln_period", "phase", "h", "k", "ln_k1", "ln_k2", "gamma"), map(float, u), strict=True))
        init["phase"] = float(np.mod(init["phase"] + np.pi, 2 * np.pi) - np.pi)
        lp0 = init["d_ln_period"]
        init["d_ln_period"] = 0.0
        kwargs = dict(**data, t_ref=0.0, lp0=lp0)
        z0 = unconstrain_fn(_numpyro_model, (), kwargs, init)
        # Chains start a little apart (0.02 in the unconstrained space) so that r_hat means
        # something; not in period and phase, where over a long baseline 0.02 is many sigma and
        # a neighbouring alias.
        jit_rng = np.random.default_rng(seed + m)
        z0 = {k: jnp.asarray(float(v) + (0.0 if k in ("d_ln_period", "phase") else 0.02)
                             * jit_rng.normal(size=num_chains) * (np.arange(num_chains) > 0))
              for k, v in z0.items()}
        mcmc.run(jax.random.PRNGKey(seed + m), init_params=z0, **kwargs)
        g = mcmc.get_samples(group_by_chain=True)
        g["ln_period"] = lp0 + g["d_ln_period"]
        u_s = jnp.stack([g[k] for k in ("ln_period", "phase", "h", "k", "ln_k1", "ln_k2", "gamma")], axis=-1)
        period, e, omega, tp, k1, k2, gamma = (np.asarray(x, np.float64) for x in _from_u(u_s, 0.0))
        tp = tp + fit.t_ref
        by_chain = dict(period=period, e=e, omega=np.mod(omega, 2 * np.pi), tp=tp, k1=k1, k2=k2, gamma=gamma,
                        q=k1 / k2)
        r_hat = {k: float(split_gelman_rubin(v)) for k, v in by_chain.items()}
        ess = {k: float(effective_sample_size(v)) for k, v in by_chain.items()}
        modes.append({"period": mode["period"], "chi2": mode["chi2"],
                      "samples": {k: v.reshape(-1) for k, v in by_chain.items()}, "r_hat": r_hat, "ess": ess})
    return OrbitPosterior(samples=modes[0]["samples"], modes=modes, fit=fit)
