"""Convergence diagnostics (rank-normalized r_hat, bulk and tail ESS) and mode finding across chains.

r_hat, bulk ESS and tail ESS follow Vehtari, Gelman, Simpson, Carpenter &
Buerkner (2021, Bayesian Analysis 16, 667): split chains, rank-normalize,
then NumPyro's Gelman-Rubin and autocorrelation-based ESS; r_hat is the
larger of the bulk and the folded (tail) value; tail ESS is the smaller ESS
of the 5 % and 95 % quantile indicators. The tests check them against ArviZ.

Modes: chains are grouped when their medians of ``rv_1``, ``rv_2`` and
``flux_ratio`` agree within ``tol`` combined robust standard deviations
(:func:`find_modes`); each group's weight is a Laplace estimate of its
posterior mass from its draws (:func:`mode_log_mass`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ess_bulk", "ess_tail", "find_modes", "mode_log_mass", "rhat"]


def _split(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"draws must have shape (chains, draws), got {x.shape}")
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _z_rank(x):
    from scipy.special import ndtri
    from scipy.stats import rankdata

    r = rankdata(x, method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.size + 0.25))


def _degenerate(x):
    return x.shape[1] < 4 or not np.all(np.isfinite(x)) or np.ptp(x) == 0


def _ess(x):
    from numpyro.diagnostics import effective_sample_size

    return float(effective_sample_size(x))


def _gr(x):
    from numpyro.diagnostics import gelman_rubin

    return float(gelman_rubin(x))


def rhat(x) -> float:
    """Rank-normalized split r_hat of (chains, draws) draws (NaN for constant or too short chains).

    Args:
        x: (chains, draws) draws of one parameter; each chain is split in halves.

    Returns:
        The larger of the bulk and folded r_hat.

    Raises:
        ValueError: ``x`` not 2-D.
    """
    s = _split(x)
    if _degenerate(s) or s.shape[0] < 2:
        return float("nan")
    bulk = _gr(_z_rank(s))
    fold = _gr(_z_rank(np.abs(s - np.median(s))))
    return max(bulk, fold)


def ess_bulk(x) -> float:
    """Bulk effective sample size of (chains, draws) draws.

    Args:
        x: (chains, draws) draws of one parameter (rank-normalized, chains split in halves).

    Returns:
        The ESS (NaN for constant draws).

    Raises:
        ValueError: ``x`` not 2-D.
    """
    s = _split(x)
    return float("nan") if _degenerate(s) else _ess(_z_rank(s))


def ess_tail(x) -> float:
    """Tail effective sample size: the smaller ESS of the 5 % and 95 % quantile indicators.

    Args:
        x: (chains, draws) draws of one parameter (chains split in halves).

    Returns:
        The ESS (NaN for constant draws).

    Raises:
        ValueError: ``x`` not 2-D.
    """
    s = _split(x)
    if _degenerate(s):
        return float("nan")
    out = []
    for q in (0.05, 0.95):
        ind = (s <= np.quantile(s, q)).astype(np.float64)
        out.append(float("nan") if np.ptp(ind) == 0 else _ess(ind))
    return float(np.nanmin(out)) if np.any(np.isfinite(out)) else float("nan")


def _robust_sd(x):
    q16, q84 = np.quantile(x, [0.16, 0.84], axis=-1)
    return 0.5 * (q84 - q16)


def find_modes(samples: dict, keys, *, tol: float = 4.0, floor=None) -> np.ndarray:
    """Group chains that sample the same mode.

    Two chains share a mode when, for every key, their medians differ by at
    most ``tol * sqrt(sd_a^2 + sd_b^2) + floor[key]`` (sd: half the 16-84 %
    range of each chain); groups are the connected components.

    Args:
        samples: ``{name: (C, S) array}``.
        keys: names compared (those absent from ``samples`` are skipped).
        tol: agreement in combined standard deviations.
        floor: ``{name: absolute tolerance}`` added to the threshold.

    Returns:
        (C,) int mode index per chain; mode 0 holds the most chains (ties: the
        lowest chain index).
    """
    keys = [k for k in keys if k in samples]
    floor = floor or {}
    n_chain = next(iter(samples.values())).shape[0]
    med = {k: np.median(samples[k], axis=1) for k in keys}
    sd = {k: _robust_sd(samples[k]) for k in keys}
    parent = list(range(n_chain))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in range(n_chain):
        for b in range(a + 1, n_chain):
            same = all(abs(med[k][a] - med[k][b]) <= tol * np.hypot(sd[k][a], sd[k][b]) + floor.get(k, 0.0)
                       for k in keys)
            if same:
                parent[root(b)] = root(a)
    roots = [root(i) for i in range(n_chain)]
    groups = sorted(set(roots), key=lambda r: (-roots.count(r), roots.index(r)))
    return np.array([groups.index(r) for r in roots], dtype=np.int64)


def mode_log_mass(z, log_density) -> float:
    """Laplace estimate of a mode's log posterior mass from its draws.

    ``log Z = mean(log p) + d / 2 + 0.5 log det(2 pi Sigma)`` with ``Sigma`` the
    draws' covariance in the unconstrained space (exact for a Gaussian mode:
    the mean log density lies d/2 below the peak).

    Args:
        z: (n, d) unconstrained draws of the mode; log_density: (n,) at those draws.
    """
    z = np.asarray(z, dtype=np.float64)
    lp = np.asarray(log_density, dtype=np.float64)
    d = z.shape[1]
    cov = np.atleast_2d(np.cov(z, rowvar=False)) + 1e-12 * np.eye(d)
    sign, logdet = np.linalg.slogdet(2.0 * np.pi * cov)
    if sign <= 0 or not np.all(np.isfinite(lp)):
        return float("-inf")
    return float(np.mean(lp) + 0.5 * d + 0.5 * logdet)
