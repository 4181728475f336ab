"""``fit_binary_epochs``: one binary fitted jointly to several visits (epochs) of the same star.

The stars' labels, rotation and flux ratio are the same at every visit; only the radial
velocities change (``per_epoch``, default ``("rv_1", "rv_2")``; any other free parameter may
be added there). The continuum is solved per epoch (and per segment) by variable projection,
as in :func:`jaxspec.fit_binary`.

Steps, for ``E`` epochs on one wavelength grid:

1. Every epoch is fitted on its own (:func:`jaxspec.fit_binary_batch`, TODCOR starts per
   epoch). The epoch with the strongest evidence for two stars (the largest single - binary
   chi2 difference) gives the shared parameters' start.
2. With those labels held, chi2 is profiled over a grid of (rv_1, rv_2) at every epoch in one
   batched pass (the two stars' shifted contributions are precomputed over the velocity grid;
   every grid cell's chi2 then follows from dot products), so that an epoch whose lines are
   blended still gets both stars in the right order. The profile's minimum and the epoch's
   own fit are two starts; the profile's minimum with every vsini at >= 10 km/s a third.
3. Levenberg-Marquardt on the joint vector (shared parameters + the per-epoch ones) from
   each start; the residual is the concatenation of the epochs' residuals and the Jacobian
   is assembled from each epoch's block-structured Jacobian. The lower chi2 wins.
4. The single-star alternative (one label set, ``rv_1`` per epoch) is fitted the same way,
   and ``is_binary`` compares the two by the BIC as in :func:`jaxspec.fit_binary`.

One program is compiled per (model, grid, settings, number of epochs padded to a power of
two >= 2): fewer epochs are padded with fully masked ones.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.fit.binary import (
    BIC_THRESHOLD,
    _chosen_degrees,
    _get_fitter,
    _options,
    _with_fit_options,
    _with_model,
    fit_binary_batch,
    prepare_spectrum,
)
from jaxspec.fit.continuum import projected_residual
from jaxspec.fit.lm import levenberg_marquardt
from jaxspec.fit.result import FLAGS, BinaryFit

__all__ = ["EPOCH_FLAGS", "EpochFit", "fit_binary_epochs"]

#: Bit flags of ``EpochFit.epoch_flag``, one value per epoch (0 = used as given).
EPOCH_FLAGS = {
    "masked": 1,  # the epoch was left out of the joint fit (see epoch_error)
    "resampled": 2,  # the epoch was interpolated onto the first epoch's wavelength grid
    "no_date": 4,  # the epoch has no MJD: the orbit step cannot use it
}

_JOINT: dict = {}


@dataclasses.dataclass(frozen=True)
class EpochFit:
    """Joint binary (and single-star) fit of E epochs of one star.

    Attributes:
        names: the parameters of the binary model (as in :class:`~jaxspec.BinaryFit`).
        per_epoch: the parameter names that take one value per epoch.
        params, errors: ``{name: value}`` with a float for a shared parameter and an (E,)
            array for a per-epoch one (units as in ``units``; rv [km/s], teff [K], logg and
            feh [dex], vsini [km/s], flux_ratio dimensionless); errors are 1-sigma from the
            joint Gauss-Newton covariance (0 for fixed parameters, NaN for masked epochs).
        units: ``{name: unit}``.
        covariance: (n, n) covariance of the joint free vector in physical units, in
            ``joint_names`` order.
        joint_names: names of the joint free vector (``"rv_1[2]"`` for epoch 2's rv_1).
        chi2: joint chi-square of the binary model; chi2_epoch: (E,) its share per epoch.
        n_pixels: usable pixels over all used epochs; dof: n_pixels - free parameters
            - continuum coefficients.
        single_params, single_chi2: the single-star alternative (one label set, rv_1 per
            epoch; ``flux_ratio`` 0).
        bic_binary, bic_single, delta_bic: ``chi2 + k ln n`` of each and single - binary.
        is_binary: ``delta_bic > bic_threshold``.
        flag: bits of :data:`jaxspec.fit.FLAGS` for the joint binary fit (not_converged,
            non_finite, single_not_converged, single_non_finite).
        epoch_flag: (E,) bits of :data:`EPOCH_FLAGS`; epoch_error: (E,) reason a masked
            epoch was left out ('' otherwise).
        mjd: (E,) date of each epoch [MJD, days] (NaN when the spectrum has none).
        epoch_fits: the single-epoch :class:`~jaxspec.BinaryFit` batch the joint fit started
            from (one row per epoch; masked epochs carry NaN).
        wave: (P,) wavelength grid [A] of the fit; n_iter: LM iterations of the winning start.
        continuum_degree: (S,) Chebyshev degree of every epoch's continuum per wavelength
            segment (with ``continuum_degree="auto"``, the highest the epochs' own fits chose).
    """

    names: tuple
    per_epoch: tuple
    params: dict
    errors: dict
    units: dict
    covariance: np.ndarray
    joint_names: tuple
    chi2: float
    chi2_epoch: np.ndarray
    n_pixels: int
    dof: int
    single_params: dict
    single_chi2: float
    bic_binary: float
    bic_single: float
    delta_bic: float
    is_binary: bool
    bic_threshold: float
    flag: int
    epoch_flag: np.ndarray
    epoch_error: tuple
    mjd: np.ndarray
    epoch_fits: BinaryFit
    wave: np.ndarray
    n_iter: int
    continuum_degree: tuple = ()

    @property
    def n_epochs(self) -> int:
        """Number of epochs E (masked ones included)."""
        return int(self.epoch_flag.size)

    @property
    def used(self) -> np.ndarray:
        """(E,) bool: epochs that entered the joint fit."""
        return (self.epoch_flag & EPOCH_FLAGS["masked"]) == 0

    def epoch_table(self):
        """Per-epoch results as an :class:`astropy.table.Table`.

        Columns: epoch, mjd [d], rv_1, rv_1_err, rv_2, rv_2_err [km/s] (and any other per-epoch
        parameter), chi2 (the joint model's share), single-epoch rv_1/rv_2 and chi2, epoch_flag
        and epoch_error.
        """
        from astropy.table import Table

        t = Table()
        t["epoch"] = np.arange(self.n_epochs)
        t["mjd"] = self.mjd
        t["mjd"].unit = "d"
        for n in self.per_epoch:
            t[n] = self.params[n]
            t[n + "_err"] = self.errors[n]
            t[n].unit = t[n + "_err"].unit = self.units.get(n) or None
        t["chi2"] = self.chi2_epoch
        for n in ("rv_1", "rv_2"):
            t["single_epoch_" + n] = self.epoch_fits.params[n]
        t["single_epoch_chi2"] = self.epoch_fits.chi2
        t["epoch_flag"] = self.epoch_flag
        t["epoch_error"] = list(self.epoch_error)
        return t

    def mass_ratio(self):
        """The dynamical mass ratio from the per-epoch velocities (Wilson 1941 regression).

        Returns:
            :class:`jaxspec.orbit.MassRatio` from :func:`jaxspec.orbit.mass_ratio` on the used
            epochs, with the correlation of each epoch's two velocities (:attr:`rv_correlation`).
        """
        from jaxspec.orbit import mass_ratio

        u = self.used
        return mass_ratio(self.params["rv_1"][u], self.errors["rv_1"][u],
                          self.params["rv_2"][u], self.errors["rv_2"][u], corr=self.rv_correlation[u])

    @property
    def rv_correlation(self) -> np.ndarray:
        """(E,) correlation of each epoch's rv_1 and rv_2 errors, from the joint covariance (NaN
        for masked epochs)."""
        out = np.full(self.n_epochs, np.nan)
        idx = {n: i for i, n in enumerate(self.joint_names)}
        for k in range(self.n_epochs):
            i, j = idx.get(f"rv_1[{k}]"), idx.get(f"rv_2[{k}]")
            if i is not None and j is not None:
                c = self.covariance
                out[k] = c[i, j] / np.sqrt(c[i, i] * c[j, j])
        return out

    def summary(self) -> str:
        """A few lines: shared parameters, per-epoch velocities, chi2 and the model comparison."""
        lines = [f"EpochFit: {self.n_epochs} epochs ({int(self.used.sum())} used), "
                 f"chi2 {self.chi2:.1f} on {self.n_pixels} pixels, delta BIC {self.delta_bic:.1f} "
                 f"-> is_binary {self.is_binary}; flag {self.flag}"]
        for n in self.names:
            if n in self.per_epoch or n not in self.params:
                continue
            lines.append(f"  {n:<11} {self.params[n]:12.4g} +- {self.errors[n]:.3g} {self.units.get(n, '')}")
        for e in range(self.n_epochs):
            vals = "  ".join(f"{n} {self.params[n][e]:8.2f} +- {self.errors[n][e]:.2f}" for n in self.per_epoch)
            extra = f"  [{self.epoch_error[e]}]" if self.epoch_error[e] else ""
            lines.append(f"  epoch {e} (MJD {self.mjd[e]:.3f}): {vals}{extra}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- input handling


def _epoch_arrays(spectra, wave, err, ivar, resample):
    """Common grid: (flux (E,P), ivar (E,P), wave (P,), mjd (E,), flags (E,), resolution list)."""
    if wave is not None:  # arrays: flux (E, P) on one grid
        flux = np.asarray(spectra, dtype=np.float64)
        if flux.ndim != 2:
            raise ValueError(f"with wave= the epochs are an (E, P) flux array, got shape {flux.shape}")
        f, w, iv = prepare_spectrum(flux, wave, err, ivar)
        e = f.shape[0]
        return f, iv, w, np.full(e, np.nan), np.zeros(e, np.int64), [None] * e
    spectra = list(spectra)
    if not spectra:
        raise ValueError("no epochs given")
    for i, s in enumerate(spectra):
        if not all(hasattr(s, a) for a in ("wave", "flux", "ivar")):
            raise ValueError(f"epoch {i} is a {type(s).__name__}, not a Spectrum (wave, flux, ivar); "
                             "give a list of Spectrum objects or an (E, P) flux array with wave=")
    ref = np.asarray(spectra[0].wave, dtype=np.float64)
    e = len(spectra)
    flux = np.ones((e, ref.size))
    iv = np.zeros((e, ref.size))
    flags = np.zeros(e, np.int64)
    mjd = np.full(e, np.nan)
    for i, s in enumerate(spectra):
        w = np.asarray(s.wave, dtype=np.float64)
        m = (s.meta or {}).get("mjd")
        try:
            mjd[i] = float(m) if m is not None else np.nan
        except (TypeError, ValueError):
            mjd[i] = np.nan
        if w.shape == ref.shape and np.allclose(w, ref, rtol=1e-9, atol=0.0):
            flux[i], iv[i] = s.flux, s.ivar
            continue
        if not resample:
            raise ValueError(
                f"epoch {i} has its own wavelength grid ({w.size} px, {w[0]:.2f}-{w[-1]:.2f} A) unlike "
                f"epoch 0 ({ref.size} px, {ref[0]:.2f}-{ref[-1]:.2f} A); pass resample=True to "
                "interpolate every epoch onto epoch 0's grid")
        # Linear interpolation of flux and variance onto epoch 0's grid; pixels outside the
        # epoch's own range or next to a masked one are masked. (Interpolation correlates
        # neighbouring pixels' noise: the errors of a resampled epoch are nominal.)
        good = s.ivar > 0
        var = np.where(good, 1.0 / np.where(good, s.ivar, 1.0), 0.0)
        inside = (ref >= w[0]) & (ref <= w[-1])
        fi = np.interp(ref, w, s.flux)
        vi = np.interp(ref, w, var)
        gi = np.interp(ref, w, good.astype(float)) > 0.999
        ok = inside & gi & (vi > 0)
        flux[i] = np.where(ok, fi, 1.0)
        iv[i] = np.where(ok, 1.0 / np.where(ok, vi, 1.0), 0.0)
        flags[i] |= EPOCH_FLAGS["resampled"]
    return flux, iv, ref, mjd, flags, [getattr(s, "resolution", None) for s in spectra]


# ---------------------------------------------------------------------- joint program


class _Joint:
    """The compiled joint LM for one binary model (binary or single) and E (padded) epochs."""

    def __init__(self, fitter, bm, per_epoch, n_epochs, max_iter, ftol):
        spec = bm.spec
        free = spec.free
        self.free = free
        self.per_epoch = tuple(n for n in per_epoch if n in free)
        self.shared = tuple(n for n in free if n not in self.per_epoch)
        e = n_epochs
        self.n_epochs = e
        ns = len(self.shared)
        # joint vector: shared (ns), then per-epoch names, each E entries
        self.joint = [(n, None) for n in self.shared] + [(n, k) for n in self.per_epoch for k in range(e)]
        nz = len(self.joint)
        gather = np.zeros((e, len(free)), np.int64)
        for k in range(e):
            for j, n in enumerate(free):
                if n in self.per_epoch:
                    gather[k, j] = ns + self.per_epoch.index(n) * e + k
                else:
                    gather[k, j] = self.shared.index(n)
        self.gather = gather
        sel = np.zeros((e, len(free), nz))
        for k in range(e):
            sel[k, np.arange(len(free)), gather[k]] = 1.0
        lo, hi = spec.bounds().T
        fidx = np.array([free.index(n) for n, _ in self.joint])
        self.lo, self.hi = lo[fidx], hi[fidx]
        dt = fitter.dtype
        self.spec = spec
        model_is_tree = fitter._model_is_tree
        model_def = fitter.model_def
        sel_j = jnp.asarray(sel, dt)
        gather_j = jnp.asarray(gather)

        def run(model_leaves, design, z0, d, w):
            bm_ = _with_model(bm, jax.tree_util.tree_unflatten(model_def, model_leaves)) if model_is_tree else bm

            def one(z, dd, ww):
                m, jt = bm_.flux_and_jacobian(spec.from_unconstrained(z))
                lo_, hi_ = (jnp.asarray(b, z.dtype) for b in spec.bounds().T)
                s = jax.nn.sigmoid(z)
                return projected_residual(m, jt * ((hi_ - lo_) * s * (1.0 - s))[:, None], dd, ww, design)

            def lin(zj):
                r, jt = jax.vmap(one)(zj[gather_j], d, w)  # (E, P), (E, n_free, P)
                jj = jnp.einsum("efk,efp->kep", sel_j, jt)
                return r.reshape(-1), jj.reshape(jj.shape[0], -1)

            fit = levenberg_marquardt(lambda zj: lin(zj)[0], z0, max_iter=max_iter, ftol=ftol,
                                      linearize_fn=lin)
            r, _ = lin(fit.z)
            return fit, jnp.sum(r.reshape(d.shape) ** 2, axis=1)

        self._run = jax.jit(jax.vmap(run, in_axes=(None, None, 0, None, None)))
        self.fitter = fitter

    def to_z(self, theta_epochs):
        """Joint unconstrained start from per-epoch parameter dicts (list of E dicts, physical)."""
        out = []
        for n, k in self.joint:
            v = theta_epochs[0 if k is None else k][n]
            out.append(v)
        v = np.clip(np.asarray(out, dtype=np.float64), self.lo + 1e-6 * (self.hi - self.lo),
                    self.hi - 1e-6 * (self.hi - self.lo))
        u = (v - self.lo) / (self.hi - self.lo)
        return np.log(u) - np.log1p(-u)

    def values(self, z):
        from scipy.special import expit

        s = expit(np.asarray(z, dtype=np.float64))
        return self.lo + (self.hi - self.lo) * s, (self.hi - self.lo) * s * (1.0 - s)

    def __call__(self, z0s, d, w):
        f = self.fitter
        leaves = f.model_leaves if f._model_is_tree else ()
        design = jnp.asarray(f.design_np, f.dtype)
        fit, chi2_e = self._run(leaves, design, jnp.asarray(z0s, f.dtype), jnp.asarray(d, f.dtype),
                                jnp.asarray(w, f.dtype))
        return jax.device_get(fit), np.asarray(chi2_e)


def _get_joint(fitter, single, per_epoch, n_epochs, max_iter, ftol):
    key = (id(fitter), single, per_epoch, n_epochs, max_iter, ftol)
    j = _JOINT.get(key)
    if j is None or j[0] is not fitter:
        if len(_JOINT) >= 16:
            _JOINT.pop(next(iter(_JOINT)))
        bm = fitter.sbm if single else fitter.bm
        j = (fitter, _Joint(fitter, bm, per_epoch, n_epochs, max_iter, ftol))
        _JOINT[key] = j
    return j[1]


def _cov_phys(jtj, g):
    d = np.diag(jtj)
    s = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    cz = np.linalg.pinv(jtj * np.outer(s, s), hermitian=True) * np.outer(s, s)
    return cz * np.outer(g, g)


def _contributions(fitter):
    """Jitted ``(theta, v (n,)) -> (star 1 at rv_1 = v, star 2 at rv_2 = v)``, each (n, P), per fitter."""
    fn = getattr(fitter, "_epoch_contributions", None)
    if fn is None:
        bm = fitter.bm

        def contributions(th, v):
            c1 = jax.vmap(lambda x: bm.contributions({**th, "rv_1": x})[0])(v)
            c2 = jax.vmap(lambda x: bm.contributions({**th, "rv_2": x})[1])(v)
            return c1, c2

        fn = fitter._epoch_contributions = jax.jit(contributions)
    return fn


def _profile_starts(fitter, theta, d, w, cont, rv_grid):
    """Per epoch, the (rv_1, rv_2) grid cell of lowest chi2 with every other parameter at theta."""
    dt = fitter.dtype
    th = {k: jnp.asarray(v, dt) for k, v in theta.items()}
    a, b = (np.asarray(x, np.float64) for x in _contributions(fitter)(th, jnp.asarray(rv_grid, dt)))
    out = []
    for k in range(d.shape[0]):
        c = np.where(np.abs(cont[k]) > 1e-6, cont[k], 1.0)
        y = d[k] / c
        ww = w[k] * c**2
        wy = ww * y
        chi = (np.sum(wy * y) - 2.0 * (a @ wy)[:, None] - 2.0 * (b @ wy)[None, :]
               + ((a * a) @ ww)[:, None] + ((b * b) @ ww)[None, :] + 2.0 * (a * ww) @ b.T)
        i, j = np.unravel_index(np.argmin(chi), chi.shape)
        out.append((float(rv_grid[i]), float(rv_grid[j])))
    return out


# ---------------------------------------------------------------------- public call


@_with_fit_options
def fit_binary_epochs(
    spectra,
    wave=None,
    err=None,
    ivar=None,
    model=None,
    resolution=None,
    *,
    per_epoch=("rv_1", "rv_2"),
    resample: bool = True,
    bic_threshold: float = BIC_THRESHOLD,
    unnormalized=None,
    **options,
) -> EpochFit:
    """Fit one binary jointly to several epochs (visits) of the same star.

    Labels, vsini and flux ratio are shared by all epochs; the parameters named in
    ``per_epoch`` (default both radial velocities) take one value per epoch; the continuum is
    solved per epoch and segment. See the module docstring for the steps.

    Args:
        spectra: a list of E :class:`~jaxspec.io.Spectrum` objects (e.g. the visits that
            :func:`jaxspec.io.read_spectra` returns for an apStar file; dates from
            ``meta["mjd"]``), or with ``wave`` an (E, P) flux array.
        wave: (P,) vacuum wavelengths [A] of an (E, P) flux array (None for Spectrum input).
        err, ivar: (E, P) 1-sigma errors or inverse variances of an (E, P) flux array.
        model: spectral model (default :func:`jaxspec.default_model`).
        resolution: resolving power (a number or (P,) per pixel); default: the spectra's
            common ``resolution`` (an error when they differ).
        per_epoch: parameters that vary from epoch to epoch; must include ``rv_1`` and ``rv_2``.
        resample: interpolate epochs on other wavelength grids onto the first epoch's
            (flagged ``resampled``); False refuses them with an error naming the epoch.
        [fit options]

    Returns:
        :class:`EpochFit`. An epoch that cannot be fitted (all pixels masked, too few pixels,
        a non-finite single-epoch fit) is masked and flagged in ``epoch_flag``; the others
        still fit.

    Raises:
        ValueError: no epochs, fewer than one usable epoch, grids that differ with
            ``resample=False``, differing resolutions without ``resolution=``, bad options,
            and every error of :func:`jaxspec.fit_binary_batch` (wavelengths outside the model,
            shape mismatches, negative errors).
    """
    if model is None:
        from jaxspec.emulator.default import default_model

        model = default_model()
    per_epoch = tuple(per_epoch)
    if "rv_1" not in per_epoch or "rv_2" not in per_epoch:
        raise ValueError(f"per_epoch must include 'rv_1' and 'rv_2', got {per_epoch}")
    flux, iv, wave, mjd, eflag, res_list = _epoch_arrays(spectra, wave, err, ivar, resample)
    if resolution is None:
        rs = {r for r in res_list if r is not None}
        if len(rs) > 1:
            raise ValueError(f"the epochs have different resolutions {sorted(rs)}: pass resolution=")
        resolution = rs.pop() if rs else None
    e = flux.shape[0]
    opts = _options(model, **options)
    unknown = [n for n in per_epoch if n not in _get_fitter(model, wave, resolution, opts, unnormalized).bm.spec.names]
    if unknown:
        raise ValueError(f"per_epoch names {unknown} are not parameters of the binary model")
    fitter = _get_fitter(model, wave, resolution, opts, unnormalized)
    errors_e = [""] * e

    # 1. every epoch on its own
    single_fits = fit_binary_batch(flux, wave, ivar=iv, model=model, resolution=resolution,
                                   bic_threshold=bic_threshold, unnormalized=unnormalized,
                                   return_model=True, **options)
    for k in range(e):
        reason = ""
        ngood = int(np.sum(iv[k] > 0))
        if ngood == 0:
            reason = "all pixels masked"
        elif single_fits.flag[k] & FLAGS["too_few_pixels"]:
            reason = f"too few usable pixels ({ngood})"
        elif single_fits.flag[k] & (FLAGS["non_finite"] | FLAGS["single_non_finite"]):
            reason = "its own fit is not finite"
        if reason:
            eflag[k] |= EPOCH_FLAGS["masked"]
            errors_e[k] = reason
    eflag |= np.where(np.isfinite(mjd), 0, EPOCH_FLAGS["no_date"])
    used = (eflag & EPOCH_FLAGS["masked"]) == 0
    if not used.any():
        raise ValueError(f"no epoch can be fitted: {'; '.join(f'epoch {k}: {r}' for k, r in enumerate(errors_e))}")

    if fitter.auto_continuum:
        # continuum_degree="auto": the joint fit takes, per segment, the highest degree that
        # the epochs' own fits chose by the BIC (one design for every epoch)
        degree = _chosen_degrees(np.max(single_fits.continuum_degree[used], axis=0))
        opts = dataclasses.replace(opts, continuum_degree=degree)
        fitter = _get_fitter(model, wave, resolution, opts, unnormalized)

    # padded to a power of two (>= 2) epochs: one program per size
    ep = max(2, 1 << (e - 1).bit_length())
    d = np.ones((ep, wave.size))
    w = np.zeros((ep, wave.size))
    d[:e][used], w[:e][used] = flux[used], iv[used]
    cont = np.ones((ep, wave.size))
    cont[:e] = np.where(np.isfinite(single_fits.continuum), single_fits.continuum, 1.0)

    names = fitter.bm.spec.names
    delta = np.where(used, single_fits.delta_chi2, -np.inf)
    ref = int(np.nanargmax(np.where(np.isfinite(delta), delta, -np.inf)))
    theta_ref = {n: float(single_fits.params[n][ref]) for n in names}

    # 2. starts: the rv profile per epoch at the reference labels, and each epoch's own fit
    rv_grid = fitter.rv
    prof = _profile_starts(fitter, theta_ref, d[:e], w[:e], cont[:e], rv_grid)

    def epoch_thetas(rv_pairs, base):
        out = []
        for k in range(ep):
            th = dict(base)
            if k < e:
                th["rv_1"], th["rv_2"] = rv_pairs[k]
            out.append(th)
        return out

    own = [(float(single_fits.params["rv_1"][k]), float(single_fits.params["rv_2"][k]))
           if used[k] else prof[k] for k in range(e)]
    max_iter = max(opts.max_iter, 100)
    joint = _get_joint(fitter, False, per_epoch, ep, max_iter, opts.ftol)
    # A third start: the reference labels with every free vsini at >= 10 km/s (near 0 the
    # spectrum changes only to second order in vsini, so a fit that started there stays there).
    kicked = dict(theta_ref)
    for n in ("vsini_1", "vsini_2"):
        if fitter.bm.spec[n].fixed is None:
            kicked[n] = max(kicked[n], 10.0)
    starts = []
    for pairs, base in ((prof, theta_ref), (own, theta_ref), (prof, kicked)):
        ths = epoch_thetas(pairs, base)
        for k in range(e):  # other per-epoch parameters start at the epoch's own fit
            for n in per_epoch:
                if n not in ("rv_1", "rv_2") and used[k]:
                    ths[k][n] = float(single_fits.params[n][k])
        starts.append(joint.to_z(ths))
    fit, chi2_e = joint(np.stack(starts), d, w)
    cost = np.where(fit.finite, fit.cost, np.inf)
    b = int(np.argmin(cost))
    z = np.asarray(fit.z[b], np.float64)
    vals, g = joint.values(z)
    cov = _cov_phys(np.asarray(fit.jtj[b], np.float64), g)
    sig = np.sqrt(np.maximum(np.diag(cov), 0.0))

    # 4. single star: one label set, rv_1 per epoch
    sjoint = _get_joint(fitter, True, per_epoch, ep, max_iter, opts.ftol)
    sref = int(np.nanargmin(np.where(used, single_fits.single_chi2 / np.maximum(single_fits.n_pixels, 1), np.inf)))
    s_theta = {n: float(single_fits.single_params[n][sref]) for n in names}
    s_ths = epoch_thetas([(float(single_fits.single_params["rv_1"][k]) if used[k] else 0.0, 0.0)
                          for k in range(e)], s_theta)
    sfit, _ = sjoint(sjoint.to_z(s_ths)[None], d, w)
    svals, _ = sjoint.values(np.asarray(sfit.z[0], np.float64))

    params, errors = {}, {}
    spec = fitter.bm.spec
    for n in names:
        if spec[n].fixed is not None:
            fixed = float(spec[n].fixed)
            params[n] = np.full(e, fixed) if n in per_epoch else fixed
            errors[n] = np.zeros(e) if n in per_epoch else 0.0
    for (n, k), v, s in zip(joint.joint, vals, sig, strict=True):
        if k is None:
            params[n], errors[n] = float(v), float(s)
        elif k < e:
            params.setdefault(n, np.full(e, np.nan))
            errors.setdefault(n, np.full(e, np.nan))
            params[n][k], errors[n][k] = (v, s) if used[k] else (np.nan, np.nan)
    single_params = {}
    for n in names:
        if n in sjoint.free:
            continue
        single_params[n] = float(fitter.sbm.spec[n].fixed) if fitter.sbm.spec[n].fixed is not None else np.nan
    for (n, k), v in zip(sjoint.joint, svals, strict=True):
        if k is None:
            single_params[n] = float(v)
        elif k < e:
            single_params.setdefault(n, np.full(e, np.nan))
            single_params[n][k] = v if used[k] else np.nan
    keep = [i for i, (_, k) in enumerate(joint.joint) if k is None or (k < e and used[k])]
    joint_names = tuple(n if k is None else f"{n}[{k}]" for i, (n, k) in enumerate(joint.joint) if i in keep)
    cov = cov[np.ix_(keep, keep)]

    n_pix = int(np.sum(w > 0))
    n_used = int(used.sum())
    k_bin = len(keep) + n_used * fitter.n_cont
    k_single = len(sjoint.shared) + n_used * len(sjoint.per_epoch) + n_used * fitter.n_cont
    chi2 = float(2.0 * fit.cost[b])
    schi2 = float(2.0 * sfit.cost[0])
    logn = math.log(max(n_pix, 1))
    bic_b, bic_s = chi2 + k_bin * logn, schi2 + k_single * logn
    flag = 0
    flag |= 0 if bool(fit.converged[b]) else FLAGS["not_converged"]
    flag |= 0 if (bool(fit.finite[b]) and np.all(np.isfinite(sig))) else FLAGS["non_finite"]
    flag |= 0 if bool(sfit.converged[0]) else FLAGS["single_not_converged"]
    flag |= 0 if bool(sfit.finite[0]) else FLAGS["single_non_finite"]
    chi2_epoch = np.where(used, chi2_e[b, :e], np.nan)
    return EpochFit(
        names=names, per_epoch=per_epoch, params=params, errors=errors,
        units={n: spec[n].unit for n in names}, covariance=cov, joint_names=joint_names,
        chi2=chi2, chi2_epoch=chi2_epoch, n_pixels=n_pix, dof=n_pix - k_bin,
        single_params=single_params, single_chi2=schi2, bic_binary=bic_b, bic_single=bic_s,
        delta_bic=bic_s - bic_b, is_binary=bool(bic_s - bic_b > bic_threshold), bic_threshold=float(bic_threshold),
        flag=int(flag), epoch_flag=eflag, epoch_error=tuple(errors_e), mjd=mjd, epoch_fits=single_fits,
        wave=wave, n_iter=int(fit.n_iter[b]), continuum_degree=tuple(int(g) for g in fitter.layout[3]),
    )
