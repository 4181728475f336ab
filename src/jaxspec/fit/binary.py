"""``fit_binary``: find and measure an SB2 in one spectrum (first version).

Pipeline: input checks (non-finite pixels masked) -> a first-order continuum
-> TODCOR over a grid of (rv_1, rv_2) for a few template pairs -> the best
distinct peaks become starts -> Levenberg-Marquardt from every start at once
(``vmap``), with the continuum solved by variable projection inside each
step -> the lowest chi-square wins. A single-star fit from the same machinery
(``flux_ratio`` fixed to 0) gives ``delta_chi2`` and BIC for model comparison.

``is_binary`` is True when the binary model lowers the BIC by more than
``BIC_THRESHOLD`` = 10 ("very strong" evidence on the Kass & Raftery scale).
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.fit.continuum import continuum_design, solve_continuum
from jaxspec.fit.lm import levenberg_marquardt
from jaxspec.fit.todcor import best_peaks, todcor
from jaxspec.models.binary import BinaryModel
from jaxspec.physics.grid import check_wavelengths

__all__ = ["BinaryFit", "fit_binary", "BIC_THRESHOLD"]

BIC_THRESHOLD = 10.0


@dataclasses.dataclass(frozen=True)
class BinaryFit:
    """Result of :func:`fit_binary` (numpy values; ``params`` and ``errors`` keyed by name).

    Attributes:
        params, errors: best values and 1-sigma errors (Gauss-Newton covariance;
            not meaningful for parameters listed in ``at_bound``).
        covariance: (n_free, n_free) covariance of the free parameters, in ``free`` order.
        free: names of the fitted parameters.
        chi2, dof, n_iter, converged: fit statistics.
        at_bound: names of parameters within 1e-3 of a bound (relative to the range).
        single_params, single_chi2: the single-star fit.
        delta_chi2, bic_single, bic_binary, is_binary: model comparison.
        wave, flux, ivar, model, model_1, model_2, continuum: (n_obs,) arrays:
            data, best model (continuum included), each star's contribution
            (continuum included), and the continuum.
        flag: '' when all is well, else a short description (non-finite fit,
            not converged).
    """

    params: dict
    errors: dict
    covariance: np.ndarray
    free: tuple
    chi2: float
    dof: int
    n_iter: int
    converged: bool
    at_bound: tuple
    single_params: dict
    single_chi2: float
    delta_chi2: float
    bic_single: float
    bic_binary: float
    is_binary: bool
    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    model: np.ndarray
    model_1: np.ndarray
    model_2: np.ndarray
    continuum: np.ndarray
    flag: str

    def to_dict(self) -> dict:
        """Scalars only: parameters, errors (``<name>_err``) and statistics."""
        out = {k: float(v) for k, v in self.params.items()}
        out.update({f"{k}_err": float(v) for k, v in self.errors.items()})
        for k in ("chi2", "dof", "n_iter", "converged", "single_chi2", "delta_chi2", "bic_single",
                  "bic_binary", "is_binary", "flag"):
            out[k] = getattr(self, k)
        return out

    def summary(self) -> str:
        """A small table of the fit."""
        lines = [f"{'parameter':12s} {'value':>12s} {'error':>10s}"]
        for k, v in self.params.items():
            err = self.errors.get(k)
            tail = f"{err:10.4f}" if err is not None else "   (fixed)"
            lines.append(f"{k:12s} {v:12.4f} {tail}")
        lines.append(f"chi2 {self.chi2:.1f} / dof {self.dof}; single-star chi2 {self.single_chi2:.1f}; "
                     f"delta_chi2 {self.delta_chi2:.1f}; is_binary {self.is_binary}")
        if self.flag:
            lines.append(f"FLAG: {self.flag}")
        return "\n".join(lines)

    def plot(self, path=None):
        """Data, model, both components and residuals (matplotlib, imported lazily)."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(3, 1))
        good = self.ivar > 0
        ax[0].plot(self.wave[good], self.flux[good], "k", lw=0.5, label="data")
        ax[0].plot(self.wave, self.model, "C3", lw=0.7, label="binary model")
        ax[0].plot(self.wave, self.model_1 + 0.5 * self.continuum, "C0", lw=0.5, label="star 1 (shifted)")
        ax[0].plot(self.wave, self.model_2 + 0.2 * self.continuum, "C2", lw=0.5, label="star 2 (shifted)")
        ax[0].legend(fontsize=8, loc="lower left")
        ax[1].plot(self.wave[good], (self.flux - self.model)[good], "k", lw=0.4)
        ax[1].set_xlabel("vacuum wavelength [A]")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


def _prepare(flux, wave, err, ivar):
    wave = check_wavelengths(wave, "wave", min_size=10)
    flux = np.asarray(flux, dtype=np.float64)
    if flux.shape != wave.shape:
        raise ValueError(f"flux has shape {flux.shape} but wave has {wave.shape}")
    if err is not None and ivar is not None:
        raise ValueError("give err or ivar, not both")
    if err is not None:
        err = np.asarray(err, dtype=np.float64)
        if err.shape != wave.shape:
            raise ValueError(f"err has shape {err.shape} but wave has {wave.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = np.where(np.isfinite(err) & (err > 0), 1.0 / err**2, 0.0)
    elif ivar is None:
        ivar = np.ones_like(flux)
    ivar = np.asarray(ivar, dtype=np.float64)
    if ivar.shape != wave.shape:
        raise ValueError(f"ivar has shape {ivar.shape} but wave has {wave.shape}")
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar < 0)
    ivar = np.where(bad, 0.0, ivar)
    flux = np.where(bad, 1.0, flux)
    if not np.any(ivar > 0):
        raise ValueError("all pixels are masked (non-finite flux or err, or ivar = 0)")
    return flux, wave, ivar


def _templates(model):
    bounds = dict(zip(model.label_names, np.asarray(model.label_bounds), strict=True))
    lo, hi = bounds["teff"]
    teffs = np.linspace(lo + 0.15 * (hi - lo), hi - 0.2 * (hi - lo), 3)[::-1]
    base = {n: float(np.clip(4.5 if n == "logg" else np.mean(b), *b)) for n, b in bounds.items()}
    pairs = [(t1, t2) for t1, t2 in itertools.combinations_with_replacement(teffs, 2)]
    return base, pairs


def fit_binary(
    flux,
    wave,
    err=None,
    ivar=None,
    model=None,
    resolution=None,
    *,
    flux_ratio_mode: str = "constant",
    continuum_degree: int = 2,
    n_starts: int = 4,
    rv_range: float = 300.0,
    rv_step: float = 4.0,
    max_iter: int = 60,
) -> BinaryFit:
    """Fit a double-lined binary (and a single star) to one spectrum.

    Args:
        flux: (n_obs,) observed flux (continuum need not be normalized).
        wave: (n_obs,) vacuum wavelengths [A], increasing, inside the model grid.
        err / ivar: (n_obs,) 1-sigma errors or inverse variance (one of them;
            neither means uniform weights). Non-finite pixels are masked.
        model: spectral model (default :func:`jaxspec.default_model`).
        resolution: instrument resolving power (None = no LSF).
        flux_ratio_mode: ``"constant"`` or ``"blackbody"``.
        continuum_degree: Chebyshev degree of the continuum per segment.
        n_starts: TODCOR peaks refined by Levenberg-Marquardt.
        rv_range, rv_step: TODCOR velocity grid [km/s].
        max_iter: LM iterations per start.

    Returns:
        :class:`BinaryFit`.

    Raises:
        ValueError: shape mismatch, unsorted or non-finite wavelengths,
            wavelengths outside the model, all pixels masked.
    """
    if model is None:
        from jaxspec.emulator.default import default_model

        model = default_model()
    flux, wave, ivar = _prepare(flux, wave, err, ivar)
    bm = BinaryModel(model, wave, resolution=resolution, flux_ratio_mode=flux_ratio_mode,
                     rv_max=max(rv_range * 1.5, 50.0))
    dtype = jnp.result_type(float)
    design = jnp.asarray(continuum_design(wave, continuum_degree), dtype)
    d = jnp.asarray(flux, dtype)
    w = jnp.asarray(ivar, dtype)
    sw = jnp.sqrt(w)

    # First-order continuum for the cross-correlation: the data against a flat model.
    cont0, _ = solve_continuum(jnp.ones_like(d), d, w, design)
    dn = d / cont0
    rv = jnp.arange(-rv_range, rv_range + 0.5 * rv_step, rv_step, dtype=dtype)
    base, pairs = _templates(model)
    zero = {n: 0.0 for n in bm.spec.names}

    def shifted(labels_one):
        theta = dict(zero)
        for i, n in enumerate(model.label_names):
            key = n if n in bm.shared else f"{n}_1"
            theta[key] = labels_one[i]
        return jax.vmap(lambda v: bm.flux({**theta, "rv_1": v, "flux_ratio": 0.0}))(rv)

    starts = []
    for t1, t2 in pairs:
        l1 = jnp.asarray([t1 if n == "teff" else base[n] for n in model.label_names], dtype)
        l2 = jnp.asarray([t2 if n == "teff" else base[n] for n in model.label_names], dtype)
        res = todcor(shifted(l1), shifted(l2), dn, w, rv)
        for p in best_peaks(res, n=n_starts, min_rv_difference=2.0 * rv_step):
            ta, tb = (t2, t1) if p["swapped"] else (t1, t2)
            starts.append((p["chi2"], ta, tb, p))
    starts.sort(key=lambda s: s[0])
    starts = starts[:n_starts]

    spec = bm.spec

    def theta_start(ta, tb, p):
        th = {}
        for n in model.label_names:
            if n in bm.shared:
                th[n] = base[n]
            else:
                th[f"{n}_1"] = ta if n == "teff" else base[n]
                th[f"{n}_2"] = tb if n == "teff" else base[n]
        th.update(rv_1=p["rv_1"], rv_2=p["rv_2"], vsini_1=5.0, vsini_2=5.0,
                  flux_ratio=float(np.clip(p["flux_ratio"], 0.02, 0.98)))
        return th

    def make_residual(sp):
        def resid(z):
            m = bm.flux(sp.from_unconstrained(z))
            cont, _ = solve_continuum(m, d, w, design)
            return sw * (m * cont - d)
        return resid

    z0 = jnp.stack([spec.to_unconstrained(theta_start(ta, tb, p)) for _, ta, tb, p in starts])
    fit = jax.jit(jax.vmap(lambda z: levenberg_marquardt(make_residual(spec), z, max_iter=max_iter)))(z0)
    cost = np.where(np.asarray(fit.finite), np.asarray(fit.cost), np.inf)
    best = int(np.argmin(cost))
    z = fit.z[best]

    # Single star: flux_ratio -> 0 and the secondary's parameters fixed.
    fixed2 = {n: float(spec[n].lower + 0.5 * (spec[n].upper - spec[n].lower))
              for n in spec.names if n.endswith("_2")}
    sspec = spec.with_fixed(flux_ratio=0.0, **fixed2)
    th_best = spec.from_unconstrained(z)
    zs0 = sspec.to_unconstrained({n: float(th_best[n]) for n in spec.names})
    sfit = jax.jit(lambda z0: levenberg_marquardt(make_residual(sspec), z0, max_iter=max_iter))(zs0)
    return _result(bm, spec, sspec, fit, best, sfit, d, w, design, wave, flux, ivar)


def _result(bm, spec, sspec, fit, best, sfit, d, w, design, wave, flux, ivar) -> BinaryFit:
    z = fit.z[best]
    theta = spec.from_unconstrained(z)
    m = bm.flux(theta)
    cont, _ = solve_continuum(m, d, w, design)
    c1, c2 = bm.contributions(theta)
    n_good = int(np.sum(ivar > 0))
    n_cont = design.shape[1]
    k_bin = len(spec.free) + n_cont
    k_single = len(sspec.free) + n_cont
    chi2 = 2.0 * float(fit.cost[best])
    schi2 = 2.0 * float(sfit.cost)
    # Covariance: (J^T J)^-1 in unconstrained space, mapped through dv/dz.
    lo, hi = spec.bounds().T
    sig = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))
    dvdz = (hi - lo) * sig * (1.0 - sig)
    jtj = np.asarray(fit.jtj[best], dtype=np.float64)
    cov_z = np.linalg.pinv(jtj)
    cov = cov_z * np.outer(dvdz, dvdz)
    params = {n: float(v) for n, v in theta.items()}
    errors = {n: float(np.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(spec.free)}
    at_bound = tuple(n for n in spec.free
                     if min(params[n] - spec[n].lower, spec[n].upper - params[n])
                     < 1e-3 * (spec[n].upper - spec[n].lower))
    flag = ""
    if not bool(fit.finite[best]):
        flag = "non-finite fit"
    elif not bool(fit.converged[best]):
        flag = "not converged"
    bic_b = chi2 + k_bin * np.log(n_good)
    bic_s = schi2 + k_single * np.log(n_good)
    single = {n: float(v) for n, v in sspec.from_unconstrained(sfit.z).items()}
    return BinaryFit(
        params=params, errors=errors, covariance=cov, free=spec.free, chi2=chi2,
        dof=n_good - k_bin, n_iter=int(fit.n_iter[best]), converged=bool(fit.converged[best]),
        at_bound=at_bound, single_params=single, single_chi2=schi2, delta_chi2=schi2 - chi2,
        bic_single=float(bic_s), bic_binary=float(bic_b), is_binary=bool(bic_s - bic_b > BIC_THRESHOLD),
        wave=wave, flux=flux, ivar=ivar, model=np.asarray(m * cont), model_1=np.asarray(c1 * cont),
        model_2=np.asarray(c2 * cont), continuum=np.asarray(cont), flag=flag,
    )
