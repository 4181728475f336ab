"""Starting points and the initial mass matrix of the chains, from a :class:`~jaxspec.fit.BinaryFit`.

Good starts are where the speed comes from: chains that begin inside the
typical set with a mass matrix shaped like the posterior need a short warmup
and take long NUTS steps.

* Optima: the best fit, then every distinct local optimum of the fit's
  starts (``fit.local_params``) whose chi-square is within ``chi2_margin``
  of the best. Two optima are distinct when rv_1, rv_2 or flux_ratio differ
  by more than 4 of the best fit's 1-sigma errors (and at least 1 km/s or
  0.02). Half of the chains (rounded up) start from the best fit, the
  others go round the further optima, so a second mode gets chains of its
  own and is reported (never averaged away), and the main mode keeps at
  least two chains for its r_hat.
* Each start is its optimum plus a Gaussian draw with half the fit's
  covariance (in the unconstrained space), so that chains start apart and
  r_hat means something.
* The inverse mass matrix is the inverse of the negative Hessian of the
  log posterior in the unconstrained space at the best optimum (``hessian=``:
  the sampler's own density, continuum marginalization and the Jacobian of
  the normal-CDF map included), its precision eigenvalues clipped to
  [1, 1e12] (variances at most 1: the prior is a standard normal in z, so a
  parameter the data do not constrain, e.g. vsini pressed against 0, has at
  most the prior's unit variance). Without a Hessian (or where it is not
  finite) the fit's covariance mapped to the unconstrained space
  (``cov_z = J^-1 cov J^-1``, ``J = d theta / d z``) is used the same way,
  and the identity where that is not finite either. A mass matrix shaped like
  the posterior from the first iteration keeps the warmup's trees shallow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["initial_state", "select_optima"]

MODE_KEYS = ("rv_1", "rv_2", "flux_ratio")
_ABS_TOL = {"rv_1": 1.0, "rv_2": 1.0, "flux_ratio": 0.02}
MAX_OPTIMA = 4


def select_optima(fit, chi2_margin: float = 9.0, max_optima: int = MAX_OPTIMA) -> list[dict]:
    """The best fit and the distinct local optima within ``chi2_margin`` of it (see module doc).

    Args:
        fit: a single-spectrum :class:`~jaxspec.fit.BinaryFit`.
        chi2_margin: largest chi-square above the best for a further optimum.
        max_optima: at most this many optima (the best first).

    Returns:
        ``[{name: value, ..., "chi2": chi2}, ...]``, best first.
    """
    best = {n: float(fit.params[n]) for n in fit.names}
    best["chi2"] = float(fit.chi2)
    out = [best]
    err = {n: float(fit.errors[n]) for n in fit.names}
    loc = fit.local_params
    chi2 = np.asarray(fit.local_chi2, dtype=np.float64)
    for i in np.argsort(chi2):
        if len(out) >= max_optima or not np.isfinite(chi2[i]) or chi2[i] > best["chi2"] + chi2_margin:
            continue
        cand = {n: float(np.asarray(loc[n])[i]) for n in fit.names}
        if not all(np.isfinite(v) for v in cand.values()):
            continue
        keys = [k for k in MODE_KEYS if k in fit.free]

        def distinct(o, cand=cand, keys=keys):
            return any(abs(cand[k] - o[k]) > max(4.0 * (err[k] if np.isfinite(err[k]) else 0.0), _ABS_TOL[k])
                       for k in keys)

        if all(distinct(o) for o in out):
            cand["chi2"] = float(chi2[i])
            out.append(cand)
    return out


def _clipped_inverse(precision, lo=1.0, hi=1e12):
    """Inverse of a symmetric precision matrix with its eigenvalues clipped to [lo, hi] (Jacobi-scaled)."""
    p = 0.5 * (precision + precision.T)
    d = np.sqrt(np.clip(np.abs(np.diag(p)), lo, hi))
    w, v = np.linalg.eigh(p / np.outer(d, d))
    # eigenvalues of the scaled matrix, clipped in the scaled units, then scaled back
    inv = (v / np.clip(w, 1e-6, None)) @ v.T / np.outer(d, d)
    w2, v2 = np.linalg.eigh(0.5 * (inv + inv.T))
    return (v2 * np.clip(w2, 1.0 / hi, 1.0 / lo)) @ v2.T


def initial_state(fit, prior, num_chains: int, rng, *, chi2_margin: float = 9.0, jitter: float = 0.5,
                  dense_mass: bool = True, hessian=None):
    """Chain starts and initial inverse mass matrix in the prior's unconstrained space.

    Args:
        fit: single-spectrum :class:`~jaxspec.fit.BinaryFit` of the same model.
        prior: :class:`~jaxspec.infer.model.Prior` (its spec's free names are
            the fit's free names, plus ``error_scale`` when sampled).
        num_chains: number of chains.
        rng: ``numpy.random.Generator``.
        chi2_margin: see :func:`select_optima`.
        jitter: scale of the start dispersion in units of the fit's errors.
        dense_mass: return a dense (d, d) or a diagonal (d,) inverse mass matrix.
        hessian: optional ``z -> (d, d)`` Hessian of the log posterior in the
            unconstrained space (see the module docstring).

    Returns:
        ``(z0 (C, d), inverse_mass (d, d) or (d,), optima list, chain_optimum (C,) int)``.
    """
    spec = prior.spec
    free = spec.free
    fit_free = tuple(fit.free)
    optima = select_optima(fit, chi2_margin)
    if prior.has_error_scale:
        dof = max(float(fit.dof), 1.0)
        s0 = float(np.sqrt(max(float(fit.chi2), 1e-12) / dof))
        lo, hi = spec["error_scale"].lower, spec["error_scale"].upper
        s0 = float(np.clip(s0, lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo)))
        for o in optima:
            o["error_scale"] = s0
    zb = prior.to_unconstrained(optima[0], margin=1e-3)
    g = prior.dtheta_dz(zb)
    cov = np.eye(len(free))
    fc = np.asarray(fit.covariance, dtype=np.float64)
    idx = [fit_free.index(n) for n in free if n in fit_free]
    pos = [i for i, n in enumerate(free) if n in fit_free]
    h = None if hessian is None else np.asarray(hessian(zb), dtype=np.float64)
    if h is not None and h.shape == (len(free), len(free)) and np.all(np.isfinite(h)):
        cov_z = _clipped_inverse(-h)
    elif fc.shape == (len(fit_free), len(fit_free)) and np.all(np.isfinite(fc)):
        cov[np.ix_(pos, pos)] = fc[np.ix_(idx, idx)]
        if prior.has_error_scale:
            j = free.index("error_scale")
            cov[j, j] = optima[0]["error_scale"] ** 2 / (2.0 * max(float(fit.n_pixels), 1.0))
        cov_z = cov / np.outer(g, g)
        cov_z = 0.5 * (cov_z + cov_z.T)
        w, v = np.linalg.eigh(cov_z)
        cov_z = (v * np.clip(w, 1e-8, 1.0)) @ v.T
    else:
        cov_z = np.eye(len(free))
    chol = np.linalg.cholesky(cov_z + 1e-12 * np.eye(len(free)))
    # At least half of the chains start at the best fit (so its mode has an r_hat); the others
    # go round the further optima.
    n_best = num_chains if len(optima) == 1 else max(1, (num_chains + 1) // 2)
    rest = [1 + i % (len(optima) - 1) for i in range(num_chains - n_best)] if len(optima) > 1 else []
    which = np.array([0] * n_best + rest, dtype=int)
    z0 = np.stack([prior.to_unconstrained(optima[k], margin=1e-3)
                   + jitter * chol @ rng.standard_normal(len(free)) for k in which])
    inv_mass = cov_z if dense_mass else np.diag(cov_z).copy()
    return z0, inv_mass, optima, which
