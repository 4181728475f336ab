"""``fit_binary``, ``fit_single`` and ``fit_binary_batch``: find and measure SB2s.

Per spectrum, all inside one jitted function that is ``vmap``-ped over spectra:

1. Non-finite flux or errors are masked (ivar = 0); a first-order continuum
   (the data against a flat model) normalizes the data for step 2.
2. TODCOR over a grid of (rv_1, rv_2) for every pair of a few template
   temperatures (the flux ratio solved analytically at each grid point, see
   :mod:`jaxspec.fit.todcor`); the lowest distinct grid points, with the
   components ordered so that star 1 is the brighter, become starts.
3. A single-star fit (``flux_ratio`` fixed at 0) from the best
   one-template cross-correlation peak, then a one-dimensional TODCOR over
   rv_2 with the single-star model as the primary's template (finds faint
   secondaries); plus one start with the single-star solution as star 1.
4. Levenberg-Marquardt from every start for a few iterations, then the
   best, the second best and the mirror of the best (stars swapped), the
   copies moved off the bounds and two of them restarted at flux ratio
   0.5, are polished to convergence. On a CPU the starts run one
   after another (``lax.map``, each stops when it converges); on an
   accelerator they are ``vmap``-ped. The continuum (a Chebyshev polynomial
   per segment of ``wave``) is solved by variable projection inside each
   step, so it never needs a start, and its response enters the Jacobian
   in closed form (:func:`jaxspec.fit.continuum.projected_residual`);
   bounds enter through a logistic transform; the model's Jacobian is
   block-structured (:meth:`jaxspec.models.BinaryModel.flux_and_jacobian`).
5. Lowest chi-square wins; errors and covariance from the Gauss-Newton
   Hessian at the solution.

Model comparison: ``is_binary`` is True when the binary model lowers the
Bayesian information criterion ``chi2 + k ln(n)`` by more than
``bic_threshold`` (default :data:`BIC_THRESHOLD` = 10, "very strong"
evidence on the Kass & Raftery scale; k counts the free parameters and the
continuum coefficients).

Fitters are cached per (model, wavelength grid, settings), so fitting many
spectra on one grid compiles once; JAX's persistent compilation cache (see
:func:`jaxspec.enable_compilation_cache`) carries that across processes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec._docs import fill_doc
from jaxspec.fit.continuum import (
    AUTO_MAX_DEGREE,
    choose_degrees,
    continuum_design,
    continuum_layout,
    projected_residual,
    solve_continuum,
)
from jaxspec.fit.lm import levenberg_marquardt
from jaxspec.fit.result import FLAGS, BinaryFit
from jaxspec.fit.todcor import todcor_cross
from jaxspec.models.binary import MODES, BinaryModel
from jaxspec.physics.grid import check_wavelengths

__all__ = ["BIC_THRESHOLD", "chi2_at", "fit_binary", "fit_binary_batch", "fit_single", "prepare_spectrum"]

#: Default delta BIC (``bic_single - bic_binary``) above which a fit calls a spectrum a binary.
BIC_THRESHOLD = 10.0
#: vsini [km/s] of the TODCOR templates (each at every template temperature).
TEMPLATE_VSINI = (15.0, 50.0, 100.0)
#: A second basin (another pair of velocities) within this chi2 of the best sets the
#: ``ambiguous`` warning of :data:`~jaxspec.fit.result.FLAGS`.
MODE_DELTA_CHI2 = 10.0
#: Restarts from the rv profile's lowest other local minima (see ``_Fitter._fit_one``, step 7).
N_PROFILE_RESTARTS = 1
#: A restart runs where the profile's other minimum is below the best's own cell + max(a, b * chi2).
PROFILE_GATE = (100.0, 0.02)
#: Two basins are mirrors (one solution, stars named the other way) when their velocity pairs
#: are swapped within 12 km/s and their temperatures within this [K].
MIRROR_TEFF = 300.0
_FITTERS: dict = {}
_MAX_FITTERS = 8


# ------------------------------------------------------------------ input checks


def _real_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array; ValueError naming ``name`` for complex or non-numeric input."""
    a = np.asarray(x)
    if a.dtype.kind == "c":
        raise ValueError(f"{name} is complex; it must be real numbers")
    try:
        return a.astype(np.float64, copy=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} is not a numeric array: {err}") from err


def prepare_spectrum(flux, wave, err=None, ivar=None):
    """Check one or a stack of spectra and turn errors into inverse variance.

    Args:
        flux: (P,) or (N, P) observed flux in any units (the continuum need
            not be normalized).
        wave: (P,) vacuum wavelengths [A], strictly increasing, finite.
        err, ivar: 1-sigma errors or inverse variance, same shape as ``flux``
            (one of them; neither means unit weights).

    Returns:
        ``(flux, wave, ivar)`` float64 numpy arrays; pixels with non-finite
        flux or error, negative ivar or zero/negative err get ivar = 0 and
        flux = 1.

    Raises:
        ValueError: shape mismatch, bad wavelengths, both err and ivar,
            negative errors.
    """
    wave = check_wavelengths(wave, "wave", min_size=10)
    flux = _real_array(flux, "flux")
    if flux.ndim not in (1, 2) or flux.shape[-1] != wave.size:
        raise ValueError(f"flux has shape {flux.shape} but wave has {wave.shape}; flux must be (P,) or "
                         f"(N, P) with P = {wave.size}")
    if err is not None and ivar is not None:
        raise ValueError("give err or ivar, not both")
    if err is not None:
        err = _real_array(err, "err")
        if err.shape != flux.shape:
            raise ValueError(f"err has shape {err.shape} but flux has {flux.shape}")
        if np.any(err[np.isfinite(err)] < 0):
            raise ValueError("err has negative values; errors must be >= 0 (use inf or NaN to mask)")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf ivar is masked below
            ivar = np.where(np.isfinite(err) & (err > 0), 1.0 / err**2, 0.0)
    elif ivar is None:
        ivar = np.ones_like(flux)
    ivar = _real_array(ivar, "ivar")
    if ivar.shape != flux.shape:
        raise ValueError(f"ivar has shape {ivar.shape} but flux has {flux.shape}")
    if np.any(ivar[np.isfinite(ivar)] < 0):
        raise ValueError("ivar has negative values; inverse variances must be >= 0 (0 masks a pixel)")
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar)
    ivar = np.where(bad, 0.0, ivar)
    flux = np.where(bad, 1.0, flux)
    return flux, wave, ivar


def _auto_model(model, wave, resolution, arrays=(), good=None):
    """``model=None``: the model that covers the observed pixels (:func:`jaxspec.models.auto.choose_model`),
    with the spectrum cut to the pixels it covers.

    Args:
        model: the user's model, or None.
        wave: (P,) wavelengths [A]; resolution: a number, (P,) or None.
        arrays: arrays with a last axis of P (flux, ivar, err; None entries pass through), cut too.
        good: (P,) usable pixels (the others do not decide the choice); default all.

    Returns:
        ``(model, wave, resolution, arrays, info)``; ``info`` is the choice in words ("" for a
        given model).
    """
    if model is not None:
        return model, wave, resolution, tuple(arrays), ""
    from jaxspec.models.auto import choose_model

    choice = choose_model(wave, resolution, None if good is None else np.asarray(good, np.float64))
    keep = choice.keep
    if not np.all(keep):
        if np.sum(keep) < 10:
            raise ValueError(f"only {int(np.sum(keep))} pixels inside the model ({choice.description})")
        arrays = [None if a is None else a[..., keep] for a in arrays]
        wave = wave[keep]
        if resolution is not None and np.ndim(resolution):
            resolution = np.asarray(resolution)[keep]
    return choice.model, wave, resolution, tuple(arrays), choice.description


def _apply_instrument(instrument, wave, resolution, options: dict):
    """``instrument=``: the preset's resolution where none is given and its continuum degree
    where ``continuum_degree`` is not given, after checking the spectrum against the preset
    (:func:`jaxspec.instruments.check_instrument`). Returns ``(resolution, options)``."""
    if instrument is None:
        return resolution, options
    from jaxspec.instruments import check_instrument

    inst = check_instrument(instrument, wave)
    if resolution is None:
        resolution = inst.resolution
    if "continuum_degree" not in options:
        options = dict(options, continuum_degree=inst.continuum_degree)
    return resolution, options


# ------------------------------------------------------------------ the fitter


def _label_starts(model):
    """Base labels (logg 4.5, velocities low, others mid-range) and 3 template temperatures."""
    bounds = dict(zip(model.label_names, np.asarray(model.label_bounds, dtype=np.float64), strict=True))
    base = {}
    for n, (lo, hi) in bounds.items():
        if n == "logg":
            base[n] = float(np.clip(4.5, lo, hi))
        elif n.startswith("v"):  # vmacro, vmic: start low
            base[n] = float(lo + 0.15 * (hi - lo))
        else:
            base[n] = float(0.5 * (lo + hi))
    if "teff" in bounds:
        lo, hi = bounds["teff"]
        teffs = np.linspace(lo + 0.15 * (hi - lo), hi - 0.2 * (hi - lo), 3)[::-1]
    else:
        teffs = np.array([np.nan])
    return base, teffs


@dataclasses.dataclass(frozen=True)
class _Options:
    flux_ratio_mode: str
    continuum_degree: int | tuple | str
    n_starts: int
    n_secondary_starts: int
    rv_range: float
    rv_step: float
    max_iter: int
    explore_iter: int
    ftol: float
    shared: tuple
    fixed: tuple
    ref_wave: float | None
    min_rv_difference: float
    init: str = "todcor"


#: ``continuum_degree="auto"``: flux whose flat-model continuum (degree AUTO_MAX_DEGREE per
#: segment) stays within NORMALIZED_TOLERANCE of 1 at every usable pixel counts as continuum-
#: normalized and is fitted with degree NORMALIZED_DEGREE; other flux gets the BIC's choice.
NORMALIZED_DEGREE = 2
NORMALIZED_TOLERANCE = 0.3

#: Global-search starts of the fit: the TODCOR search alone, or with the amortized network's
#: prediction (and its mirror) as two more starts (``init="amortized"``).
INITS = ("todcor", "amortized")


class _Fitter:
    """Everything that depends on (model, wave, resolution, options) but not on the data."""

    def __init__(self, model, wave, resolution, opts: _Options, unnormalized=None):
        self.opts = opts
        self._args = (model, wave, resolution, unnormalized)
        fixed = dict(opts.fixed)
        self.base, self.teffs = _label_starts(model)
        if fixed.get("flux_ratio") == 0.0:  # a single-star fit: the secondary does not exist
            names = BinaryModel(model, wave, shared=opts.shared).spec.names
            fixed.update({n: self._start_value(n) for n in names if n.endswith("_2")}, vsini_2=0.0)
        self.bm = BinaryModel(model, wave, resolution=resolution, flux_ratio_mode=opts.flux_ratio_mode,
                              unnormalized=unnormalized, shared=opts.shared, fixed=fixed,
                              ref_wave=opts.ref_wave, rv_max=max(opts.rv_range * 1.5, 50.0))
        spec = self.bm.spec
        # Single star: flux_ratio 0, the secondary's parameters fixed at their start values.
        fixed2 = {n: self._start_value(n) for n in spec.names if n.endswith("_2")}
        self.sbm = self.bm.with_fixed(**{**fixed2, "vsini_2": 0.0, "flux_ratio": 0.0})
        # continuum_degree "auto": the design holds every degree up to AUTO_MAX_DEGREE and each
        # spectrum keeps the columns its BIC choice needs (choose_continuum)
        self.auto_continuum = opts.continuum_degree == "auto"
        layout_degree = AUTO_MAX_DEGREE if self.auto_continuum else opts.continuum_degree
        self.design_np = continuum_design(self.bm.wave, layout_degree)
        self.layout = continuum_layout(self.bm.wave, layout_degree)
        self.n_segments = int(self.layout[3].size)
        self.n_cont = self.design_np.shape[1]
        self.dtype = jnp.result_type(float)
        rv = np.arange(-opts.rv_range, opts.rv_range + 0.5 * opts.rv_step, opts.rv_step)
        self.rv = rv
        vsinis = [self._start_value("vsini_1")] if spec["vsini_1"].fixed is not None else list(
            TEMPLATE_VSINI)
        grid = list(itertools.product(self.teffs, vsinis))
        self.t_teff = np.array([g[0] for g in grid])
        self.t_vsini = np.array([g[1] for g in grid])
        self.pairs = list(itertools.combinations_with_replacement(range(len(grid)), 2))
        # the binary model's own copy (restricted to the pixels the observed ones see)
        self.model_leaves, self.model_def = jax.tree_util.tree_flatten(self.bm.model)
        self._model_is_tree = all(isinstance(x, (jax.Array, np.ndarray)) for x in self.model_leaves)
        self.templates = self._templates(model)
        self._run = jax.jit(jax.vmap(self._fit_one, in_axes=(None, None, None, 0, 0, 0)))
        # Starts of one spectrum: on a CPU one after the other (lax.map), so each start's
        # iterations stop when it converges; vmapped, every start would run as long as the
        # slowest, and a CPU gains nothing from the wider arrays. On accelerators: vmap.
        self._sequential = jax.default_backend() == "cpu"
        self._extra = {}  # other compiled programs of this fitter (local_fits)

    def _lanes(self, fn, zs):
        return jax.lax.map(fn, zs) if self._sequential else jax.vmap(fn)(zs)

    def _start_value(self, name):
        """Start (and, for the single-star fit, fixed) value of a parameter before the data are seen."""
        stem = name[:-2] if name[-2:] in ("_1", "_2") else name
        if stem in self.base:
            return self.base[stem]
        # vsini starts at 15 km/s: near 0 the spectrum changes only to second order in vsini, so a
        # start there has no gradient to follow.
        return {"rv": 0.0, "vsini": 15.0, "flux_ratio": 0.3}[stem]

    def _templates(self, model):
        """Line depths 1 - T of each template shifted to every grid velocity, (n_t, n_rv, P).

        Templates are every pair of the template temperatures and :data:`TEMPLATE_VSINI`
        (one vsini, the start value, when vsini_1 is fixed): a star rotating at 60 km/s
        correlates poorly with a narrow-lined template, and a blend of two narrow templates
        then mimics it better than the right pair of velocities does."""
        bm = self.bm.with_fixed(flux_ratio=0.0)
        spec = bm.spec

        # One program for every template (theta is an argument, not a constant), and a model
        # that is a pytree as an argument too: compiled once, not once per template.
        def shifted_all(leaves, theta, rv):
            b = _with_model(bm, jax.tree_util.tree_unflatten(self.model_def, leaves)) if self._model_is_tree else bm
            return jax.vmap(lambda v: 1.0 - b.flux({**theta, "rv_1": v}))(rv)

        run = jax.jit(shifted_all)
        leaves = self.model_leaves if self._model_is_tree else None
        out = []
        for t, vs in zip(self.t_teff, self.t_vsini, strict=True):
            theta = {n: jnp.asarray(self._start_value(n), self.dtype) for n in spec.names}
            if "teff_1" in theta:
                theta["teff_1"] = jnp.asarray(t, self.dtype)
            theta["vsini_1"] = jnp.asarray(vs, self.dtype)
            for n in spec.names:
                if spec[n].fixed is not None:
                    theta[n] = jnp.asarray(spec[n].fixed, self.dtype)
            out.append(run(leaves, theta, jnp.asarray(self.rv, self.dtype)))
        a = jnp.stack(out)
        cross = jnp.stack([a[i] @ a[j].T for i, j in self.pairs])  # unweighted A_i . A_j^T
        return {"a": a, "a2": a * a, "cross": cross, "rv": jnp.asarray(self.rv, self.dtype)}

    def _kick(self, spec, z, floor=10.0, margin=0.05, ratio=None):
        """The same point moved off the bounds: every free parameter at least ``margin`` of its
        range inside, every free vsini at least ``floor`` km/s (and, with ``ratio``, the flux
        ratio set to it). In the logistic parametrization a parameter that ran into a bound has
        almost no gradient left to come back with."""
        u = jnp.clip(jax.nn.sigmoid(z), margin, 1.0 - margin)
        th = spec.from_unconstrained(jnp.log(u) - jnp.log1p(-u))
        for n in ("vsini_1", "vsini_2"):
            if spec[n].fixed is None:
                th[n] = jnp.maximum(th[n], floor)
        if ratio is not None and spec["flux_ratio"].fixed is None:
            th["flux_ratio"] = jnp.asarray(ratio, th["flux_ratio"].dtype)
        return spec.to_unconstrained(th)

    def _mirror(self, spec, z, ratio=None):
        """The same solution with the components swapped (flux_ratio -> 1 / flux_ratio, capped
        at 0.95; or ``ratio`` where given)."""
        return spec.to_unconstrained(self._swapped(spec, spec.from_unconstrained(z), ratio))

    def _swapped(self, spec, th, ratio=None):
        sw = dict(th)
        for n in spec.names:
            if n.endswith("_1") and n[:-2] + "_2" in th:
                sw[n], sw[n[:-2] + "_2"] = th[n[:-2] + "_2"], th[n]
        if spec["flux_ratio"].fixed is None:
            sw["flux_ratio"] = (jnp.clip(1.0 / jnp.maximum(th["flux_ratio"], 1e-3), 0.02, 0.95)
                                if ratio is None else ratio)
        return sw

    # -------------------------------------------------------------- one spectrum (traced)
    def _theta_start(self, spec, t1, t2, rv1, rv2, q, v1=None, v2=None):
        th = {}
        for n in spec.names:
            if spec[n].fixed is not None:
                th[n] = jnp.asarray(spec[n].fixed, self.dtype)
            else:
                th[n] = jnp.asarray(self._start_value(n), self.dtype)
        if "teff_1" in th and spec["teff_1"].fixed is None:
            th["teff_1"] = t1
        if "teff_2" in th and spec["teff_2"].fixed is None:
            th["teff_2"] = t2
        for n, v in (("rv_1", rv1), ("rv_2", rv2), ("flux_ratio", q), ("vsini_1", v1), ("vsini_2", v2)):
            if v is not None and spec[n].fixed is None:
                th[n] = v
        return th

    def choose_continuum(self, model, d, w, design, normalized=None):
        """``(degrees (S,), design)``: the continuum degree per segment and the design it keeps,
        by the BIC against ``model`` when ``continuum_degree="auto"``, else as given; with
        ``normalized`` (a traced bool) True, :data:`NORMALIZED_DEGREE` instead of the BIC."""
        if not self.auto_continuum:
            return jnp.asarray(self.layout[3], jnp.int32), design
        pix, cseg, cdeg, _ = self.layout
        deg, mask = choose_degrees(model, d, w, design, pix, cseg, cdeg, self.n_segments)
        if normalized is not None:
            deg = jnp.where(normalized, NORMALIZED_DEGREE, deg)
            mask = jnp.where(normalized, jnp.asarray(cdeg) <= NORMALIZED_DEGREE, mask)
        return deg, design * mask.astype(design.dtype)

    def auto_design(self, model, d, w, design):
        """``(degrees, design)`` for ``model`` as the fit decides them (normalized flux: degree
        2; other flux: the BIC against ``model``); the given design when the degree is fixed."""
        normalized = None
        if self.auto_continuum:
            normalized, design = self.looks_normalized(d, w, design)
        return self.choose_continuum(model, d, w, design, normalized)

    def looks_normalized(self, d, w, design):
        """``(normalized, design)``: whether the flux is continuum-normalized (a flat model's
        continuum within :data:`NORMALIZED_TOLERANCE` of 1 at every usable pixel) and the design
        to search with: degree :data:`NORMALIZED_DEGREE` if so, else every degree (``"auto"``)."""
        cont, _ = solve_continuum(jnp.ones_like(d), d, w, design)
        normalized = jnp.all(jnp.where(w > 0, jnp.abs(cont - 1.0) <= NORMALIZED_TOLERANCE, True))
        keep = jnp.where(normalized, jnp.asarray(self.layout[2]) <= NORMALIZED_DEGREE, True)
        return normalized, design * keep.astype(design.dtype)

    def _fit_one(self, model_leaves, templates, design, d, w, z_extra):
        opts = self.opts
        if self._model_is_tree:
            model = jax.tree_util.tree_unflatten(self.model_def, model_leaves)
            bm = _with_model(self.bm, model)
            sbm = _with_model(self.sbm, model)
        else:
            bm, sbm = self.bm, self.sbm
        spec, sspec = bm.spec, sbm.spec
        dt = d.dtype
        teffs = jnp.asarray(self.t_teff, dt)
        vsinis = jnp.asarray(self.t_vsini, dt)
        n_good = jnp.sum(w > 0)

        # 0. continuum_degree="auto": run() sends continuum-normalized flux to the fitter of
        # degree NORMALIZED_DEGREE; what comes here (raw counts, a blaze) searches with every
        # degree up to AUTO_MAX_DEGREE and chooses by the BIC below
        # 1. first-order continuum
        cont0, _ = solve_continuum(jnp.ones_like(d), d, w, design)
        cont0 = jnp.where(jnp.abs(cont0) > 1e-6, cont0, 1.0)
        y = 1.0 - d / cont0
        wn = w * cont0**2

        # 2. cross-correlation: one template (single star) and TODCOR (pairs)
        a = templates["a"]
        rv = templates["rv"]
        aa = templates["a2"] @ wn  # (n_t, n_rv)
        ay = a @ (wn * y)
        yy = jnp.sum(wn * y * y)
        wbar = jnp.sum(wn) / wn.shape[0]
        single_chi2 = yy - ay**2 / jnp.maximum(aa, 1e-30)
        it, ir = jnp.unravel_index(jnp.argmin(single_chi2), single_chi2.shape)

        i1 = jnp.asarray([p[0] for p in self.pairs])
        i2 = jnp.asarray([p[1] for p in self.pairs])
        chi2, ca, cb = jax.vmap(todcor_cross, in_axes=(0, 0, 0, 0, 0, None, None))(
            aa[i1], aa[i2], ay[i1], ay[i2], wbar * templates["cross"], yy, rv)
        swap_ok = jnp.abs(rv[:, None] - rv[None, :]) >= opts.min_rv_difference
        valid = (ca > 0) & (cb > 0) & swap_ok[None] & jnp.isfinite(chi2)
        score = jnp.where(valid, chi2, jnp.inf)
        starts = []
        sep = max(2.5 * opts.rv_step, 10.0)
        for _ in range(opts.n_starts):
            flat = jnp.argmin(score)
            p, i, j = jnp.unravel_index(flat, score.shape)
            k = cb[p, i, j] / ca[p, i, j]
            sw_ = k > 1.0
            ta, tb = teffs[i1[p]], teffs[i2[p]]
            va, vb = vsinis[i1[p]], vsinis[i2[p]]
            r1, r2 = rv[i], rv[j]
            starts.append(self._theta_start(
                spec,
                jnp.where(sw_, tb, ta), jnp.where(sw_, ta, tb),
                jnp.where(sw_, r2, r1), jnp.where(sw_, r1, r2),
                jnp.clip(jnp.where(sw_, 1.0 / k, k), 0.02, 0.98),
                jnp.where(sw_, vb, va), jnp.where(sw_, va, vb)))
            near = ((jnp.abs(rv[:, None] - r1) < sep) & (jnp.abs(rv[None, :] - r2) < sep)) | (
                (jnp.abs(rv[:, None] - r2) < sep) & (jnp.abs(rv[None, :] - r1) < sep))
            score = jnp.where(near[None], jnp.inf, score)

        def residual_fn(model_, sp):
            return _objective(model_, sp, d, w, design)[0]

        def linearize_fn(model_, sp):
            return _objective(model_, sp, d, w, design)[1]

        # 3. single star
        s_start = self._theta_start(sspec, teffs[it], teffs[it], rv[ir], rv[ir], jnp.asarray(0.0, dt),
                                    vsinis[it])
        sfit = levenberg_marquardt(residual_fn(sbm, sspec), sspec.to_unconstrained(s_start),
                                   max_iter=opts.max_iter, ftol=opts.ftol,
                                   linearize_fn=linearize_fn(sbm, sspec))
        s_theta = sspec.from_unconstrained(sfit.z)

        # 4. starts for the secondary given the single-star fit: with the single-star model as
        # template 1 (its own broadening and labels), a one-dimensional TODCOR over rv_2 for
        # every template temperature. This finds faint secondaries that the 2D search misses
        # because blends of two templates near rv_1 mimic a broader primary line.
        ms = sbm.flux(s_theta)
        cs, _ = solve_continuum(ms, d, w, design)
        cs = jnp.where(jnp.abs(cs) > 1e-6, cs, 1.0)
        ys = 1.0 - d / cs
        ws = w * cs**2
        a1 = 1.0 - ms
        a1a1 = jnp.sum(ws * a1 * a1)
        a1y = jnp.sum(ws * a1 * ys)
        bb = templates["a2"] @ ws  # (n_t, n_rv)
        by = a @ (ws * ys)
        ab = a @ (ws * a1)
        det = a1a1 * bb - ab**2
        det = jnp.where(det > 1e-12 * a1a1 * bb, det, jnp.inf)
        ca1 = (a1y * bb - by * ab) / det
        cb1 = (by * a1a1 - a1y * ab) / det
        chi1 = -(ca1 * a1y + cb1 * by)
        far = jnp.abs(rv - s_theta["rv_1"]) >= opts.min_rv_difference
        score1 = jnp.where((ca1 > 0) & (cb1 > 0) & far[None] & jnp.isfinite(chi1), chi1, jnp.inf)
        comp1 = {n: s_theta[n] for n in spec.free if not n.endswith("_2") and n in s_theta}
        for _ in range(opts.n_secondary_starts):
            t, r = jnp.unravel_index(jnp.argmin(score1), score1.shape)
            k = cb1[t, r] / ca1[t, r]
            th = self._theta_start(spec, teffs[0], teffs[t], s_theta["rv_1"], rv[r], jnp.clip(k, 0.02, 0.98),
                                   None, vsinis[t])
            th.update(comp1)
            if spec["flux_ratio"].fixed is None:
                th["flux_ratio"] = jnp.clip(k, 0.02, 0.98)
            starts.append(th)
            score1 = jnp.where(jnp.abs(rv - rv[r])[None] < sep, jnp.inf, score1)

        # 5. the single-star solution as star 1 and the best 2D peak's secondary
        from_single = {**starts[0], **comp1}
        from_single["flux_ratio"] = jnp.asarray(0.1, dt) if spec["flux_ratio"].fixed is None else (
            jnp.asarray(spec["flux_ratio"].fixed, dt))
        z0 = jnp.stack([spec.to_unconstrained(th) for th in [*starts, from_single]])
        if opts.init == "amortized":  # the network's answer, in both star orders
            z0 = jnp.concatenate([z0, z_extra[None].astype(z0.dtype), self._mirror(spec, z_extra.astype(z0.dtype))[None]])
        # Explore: a few iterations from every start; polish: the best one to convergence.
        # (Under vmap a while_loop runs as long as its slowest lane, so polishing only the
        # winner keeps stragglers cheap.)
        lm = functools.partial(levenberg_marquardt, residual_fn(bm, spec), ftol=opts.ftol,
                               linearize_fn=linearize_fn(bm, spec))
        fits = self._lanes(lambda z: lm(z, max_iter=opts.explore_iter), z0)
        cost = jnp.where(fits.finite, fits.cost, jnp.inf)
        order = jnp.argsort(cost)
        cont_degree = jnp.asarray(self.layout[3], jnp.int32)
        if self.auto_continuum:
            # continuum_degree="auto": the starts were explored with every degree up to
            # AUTO_MAX_DEGREE; each segment's degree is chosen by the BIC at the best explored
            # binary, and everything from here on (polish, rv profile, restarts, the single-star
            # fit polished again) uses it. The explored lanes' chi2 are re-evaluated with it.
            cont_degree, design = self.choose_continuum(bm.flux(spec.from_unconstrained(fits.z[order[0]])), d, w,
                                                        design)
            lm = functools.partial(levenberg_marquardt, residual_fn(bm, spec), ftol=opts.ftol,
                                   linearize_fn=linearize_fn(bm, spec))

            def held_cost(z):
                m_ = bm.flux(spec.from_unconstrained(z))
                c_, _ = solve_continuum(m_, d, w, design)
                return 0.5 * jnp.sum(w * (m_ * c_ - d) ** 2)

            fits = fits._replace(cost=self._lanes(held_cost, fits.z).astype(fits.cost.dtype))
            cost = jnp.where(fits.finite, fits.cost, jnp.inf)
            order = jnp.argsort(cost)
            sfit = levenberg_marquardt(residual_fn(sbm, sspec), sfit.z, max_iter=opts.max_iter, ftol=opts.ftol,
                                       linearize_fn=linearize_fn(sbm, sspec))
            s_theta = sspec.from_unconstrained(sfit.z)
        # Polish the two best and the mirror of the best (components swapped): a start with the
        # stars in the wrong order runs into flux_ratio = 1 and stops there.
        # A parameter that ran into a bound has almost no gradient left in the logistic
        # parametrization, and a vsini that drifted to ~0 cannot come back (the spectrum
        # changes only to second order there): the polished copies restart off the bounds
        # and with vsini >= 10 km/s (see _kick); the best also keeps its own values in one lane.
        # A solution that ran into flux_ratio = 1 with the wrong star broad sits in a basin of its
        # own: the mirrored copy and a copy of the best kicked further (20 % of each range inside,
        # vsini >= 20 km/s) restart at flux_ratio 0.5 (bench_recovery: chi2 <= truth + 1 went from
        # 0.965 to 0.985 of 200 binaries, at the same cost). The plain kicks of the best and of its
        # mirror stay as well: without them two other spectra (a swapped pair stuck at flux_ratio 1)
        # regressed; the six lanes find the lower minimum of both sets, for about 27 % more time.
        b0, b1 = fits.z[order[0]], fits.z[order[1]]
        m0 = self._mirror(spec, b0)
        zp = jnp.stack([b0, self._kick(spec, b0), self._kick(spec, b0, floor=20.0, margin=0.2, ratio=0.5),
                        self._kick(spec, b1), self._kick(spec, m0), self._kick(spec, m0, ratio=0.5)])
        polished = self._lanes(lambda z: lm(z, max_iter=opts.max_iter), zp)
        fits = jax.tree_util.tree_map(
            lambda all_, pol: jnp.concatenate([all_.at[order[:2]].set(pol[:2]), pol[2:]]), fits, polished)
        order_polished = order[:2]
        cost = jnp.where(fits.finite, fits.cost, jnp.inf)
        order = jnp.argsort(cost)
        b0 = fits.z[order[0]]

        # 7. The rv profile of the best solution: chi2 over the whole (rv_1, rv_2) grid with the
        # labels and vsini held, the two stars' weights solved linearly (TODCOR with the fitted
        # stars as templates) and the continuum held at the best fit's. Its lowest other local
        # minima (cells no higher than their 8 neighbours, away from the best pair) are fitted
        # from there; a better basin found so replaces the best, and every distinct basin is a
        # mode of the result.
        psep = max(3.0 * opts.rv_step, 12.0)
        restarts = []
        if spec["rv_1"].fixed is None and spec["rv_2"].fixed is None:
            theta0 = spec.from_unconstrained(b0)
            prv = templates["rv"][::2]  # the profile on every other TODCOR velocity: 4x cheaper
            f1, f2, m0 = bm.velocity_grid(theta0, prv, with_flux=True)
            cb, _ = solve_continuum(m0, d, w, design)
            cb = jnp.where(jnp.abs(cb) > 1e-6, cb, 1.0)
            yb = 1.0 - d / cb
            wb = w * cb**2
            pa, pb = 1.0 - f1, 1.0 - f2
            paw, pbw = pa * wb, pb * wb
            pchi, pw1, pw2 = todcor_cross(jnp.sum(paw * pa, 1), jnp.sum(pbw * pb, 1), paw @ yb, pbw @ yb,
                                         paw @ pb.T, jnp.sum(wb * yb * yb), prv)
            ok = (pw1 > 0) & (pw2 > 0) & swap_ok[::2, ::2] & jnp.isfinite(pchi)
            pchi = jnp.where(ok, pchi, jnp.inf)
            padded = jnp.pad(pchi, 1, constant_values=jnp.inf)
            n_rv = prv.shape[0]
            neigh = jnp.stack([padded[1 + di:1 + di + n_rv, 1 + dj:1 + dj + n_rv]
                               for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj])
            local_min = jnp.isfinite(pchi) & jnp.all(pchi[None] <= neigh, axis=0)
            own = (jnp.abs(prv[:, None] - theta0["rv_1"]) < psep) & (jnp.abs(prv[None, :] - theta0["rv_2"]) < psep)
            cand = jnp.where(local_min & ~own, pchi, jnp.inf)
            # a restart runs only where the profile comes within PROFILE_GATE of the best's own
            # cell (profile chi2 are upper bounds of their basins' minima, labels held)
            own_chi = jnp.min(jnp.where(own, pchi, jnp.inf))
            own_chi = jnp.where(jnp.isfinite(own_chi), own_chi, 2.0 * fits.cost[order[0]])
            gate = own_chi + jnp.maximum(PROFILE_GATE[0], PROFILE_GATE[1] * own_chi)
            gates = []
            for _ in range(N_PROFILE_RESTARTS):
                i, j = jnp.unravel_index(jnp.argmin(cand), cand.shape)
                k = pw2[i, j] / pw1[i, j]
                th = dict(theta0, rv_1=prv[i], rv_2=prv[j])
                if spec["flux_ratio"].fixed is None:
                    th["flux_ratio"] = jnp.clip(k, 0.02, 0.98)
                # where the star at prv[j] is the brighter, it becomes star 1
                swapped = self._swapped(spec, th, jnp.clip(1.0 / jnp.maximum(k, 1e-3), 0.02, 0.98))
                th = {n: jnp.where(k > 1.0, swapped[n], th[n]) for n in th}
                restarts.append(self._kick(spec, spec.to_unconstrained(th)))
                gates.append(cand[i, j] < gate)
                cand = jnp.where((jnp.abs(prv[:, None] - prv[i]) < psep) & (jnp.abs(prv[None, :] - prv[j]) < psep),
                                 jnp.inf, cand)
        if restarts:
            # a gated-off lane returns the best solution unchanged (a duplicate basin)
            best_fit = jax.tree_util.tree_map(lambda x: x[order[0]], fits)

            def restart(args):
                z, go = args
                return jax.lax.cond(go, lambda: lm(z, max_iter=max(opts.max_iter // 2, 1)), lambda: best_fit)

            refits = self._lanes(restart, (jnp.stack(restarts), jnp.stack(gates)))
            fits = jax.tree_util.tree_map(lambda a_, r_: jnp.concatenate([a_, r_]), fits, refits)
        cost = jnp.where(fits.finite, fits.cost, jnp.inf)
        order = jnp.argsort(cost)
        best = order[0]
        fits = fits._replace(n_iter=fits.n_iter.at[best].add(opts.explore_iter))
        # distinct basins: converged lanes (the polished and the restarted ones; the explore
        # lanes stopped after a few iterations) sorted by chi2, a lane dropped where a better
        # one has both velocities within psep of it
        vals = jax.vmap(lambda zz: _stack(spec, spec.from_unconstrained(zz)))(fits.z)
        i_rv1, i_rv2 = spec.names.index("rv_1"), spec.names.index("rv_2")
        n_explore = z0.shape[0]
        lane = jnp.arange(cost.shape[0])
        done = (lane >= n_explore) | jnp.isin(lane, order_polished)
        mc = jnp.where(done, cost, jnp.inf)
        mo = jnp.argsort(mc)
        r1, r2, mc = vals[mo, i_rv1], vals[mo, i_rv2], mc[mo]
        close = (jnp.abs(r1[:, None] - r1[None, :]) < psep) & (jnp.abs(r2[:, None] - r2[None, :]) < psep)
        # the mirror of a better basin (stars and their labels swapped, as for near-equal stars
        # at flux ratio ~1) is the same physical solution, not a second basin
        mirror = (jnp.abs(r1[:, None] - r2[None, :]) < psep) & (jnp.abs(r2[:, None] - r1[None, :]) < psep)
        if "teff_1" in spec.names and "teff_2" in spec.names:
            t1, t2 = vals[mo, spec.names.index("teff_1")], vals[mo, spec.names.index("teff_2")]
            mirror = mirror & (jnp.abs(t1[:, None] - t2[None, :]) < MIRROR_TEFF) & (
                jnp.abs(t2[:, None] - t1[None, :]) < MIRROR_TEFF)
        close = close | mirror
        dup = jnp.any(jnp.tril(close, -1) & jnp.isfinite(mc)[None, :], axis=1)
        mode = jnp.isfinite(mc) & ~dup
        mkey = jnp.where(mode, mc, jnp.inf)
        mo2 = jnp.argsort(mkey)
        modes_values = vals[mo][mo2]
        modes_chi2 = 2.0 * mkey[mo2]
        z = fits.z[best]
        theta = spec.from_unconstrained(z)

        out = {
            "values": _stack(spec, theta),
            "errors": _errors(spec, z, fits.jtj[best]),
            "cov": _cov(spec, z, fits.jtj[best]),
            "chi2": 2.0 * fits.cost[best],
            "n_iter": fits.n_iter[best],
            "converged": fits.converged[best],
            "finite": fits.finite[best],
            "at_bound": _at_bound(spec, z),
            "single_values": _stack(sspec, s_theta),
            "single_errors": _errors(sspec, sfit.z, sfit.jtj, names=spec.names),
            "single_chi2": 2.0 * sfit.cost,
            "single_converged": sfit.converged,
            "single_finite": sfit.finite,
            "local_values": vals[order],
            "local_chi2": 2.0 * fits.cost[order],
            "modes_values": modes_values,
            "modes_chi2": modes_chi2,
            "n_good": n_good,
            "continuum_degree": cont_degree,
            "n_cont": jnp.sum(jnp.any(design != 0, axis=0)),
        }
        m, c1, c2 = bm.flux_and_contributions(theta)
        cont, _ = solve_continuum(m, d, w, design)
        out.update(model=m * cont, model_1=c1 * cont, model_2=c2 * cont, continuum=cont)
        return out

    # -------------------------------------------------------------- host side
    def normalized_rows(self, get_chunk, n: int, block: int = 64) -> np.ndarray:
        """(n,) bool: which spectra are continuum-normalized (:meth:`looks_normalized`), in
        blocks of at most ``block`` rows padded to a power of two (few compiled shapes)."""
        key = "normalized"
        if key not in self._extra:
            design = jnp.asarray(self.design_np, self.dtype)
            self._extra[key] = jax.jit(jax.vmap(lambda d, w: self.looks_normalized(d, w, design)[0]))
        check = self._extra[key]
        size = max(1, min(block, 1 << max(n - 1, 0).bit_length()))
        out = np.zeros(n, bool)
        for a in range(0, n, size):
            b = min(a + size, n)
            f, iv = get_chunk(a, b)
            d = np.ones((size, f.shape[1]), self.dtype)
            w = np.zeros((size, f.shape[1]), self.dtype)
            d[: b - a], w[: b - a] = f, iv
            out[a:b] = np.asarray(check(d, w))[: b - a]
        return out

    def normalized_fitter(self):
        """The fitter of this one's settings with ``continuum_degree`` = :data:`NORMALIZED_DEGREE`."""
        model, wave, resolution, unnormalized = self._args
        return _get_fitter(model, wave, resolution, dataclasses.replace(self.opts, continuum_degree=NORMALIZED_DEGREE),
                           unnormalized)

    def run(self, get_chunk, n: int, *, extra_starts=None, **kwargs):
        """Fit ``n`` spectra (:meth:`run_chunks`). With ``continuum_degree="auto"`` the
        continuum-normalized spectra (:meth:`normalized_rows`) are fitted by
        :meth:`normalized_fitter`, the program of a fixed degree 2, and the others by this
        fitter's search over the degrees; the results come back in the input order."""
        if not self.auto_continuum:
            return self.run_chunks(get_chunk, n, extra_starts=extra_starts, **kwargs)
        normalized = self.normalized_rows(get_chunk, n)
        parts = []
        for fitter, rows in ((self.normalized_fitter(), np.flatnonzero(normalized)),
                             (self, np.flatnonzero(~normalized))):
            if rows.size == 0:
                continue

            def get_rows(a, b, rows=rows):
                # consecutive rows are read together
                sel = rows[a:b]
                runs = np.split(sel, np.flatnonzero(np.diff(sel) != 1) + 1)
                got = [get_chunk(int(r[0]), int(r[-1]) + 1) for r in runs]
                return tuple(np.concatenate([g[k] for g in got]) for k in range(2))

            extra = None if extra_starts is None else extra_starts[rows]
            parts.append((rows, fitter.run_chunks(get_rows, rows.size, extra_starts=extra, **kwargs)))
        if len(parts) == 1:
            return parts[0][1]
        out = {}
        for k in parts[0][1]:
            first = parts[0][1][k]
            out[k] = np.empty((n, *first.shape[1:]), first.dtype)
            for rows, res in parts:
                out[k][rows] = res[k]
        return out

    def run_chunks(self, get_chunk, n: int, *, chunk_size: int, return_model: bool, progress: bool = False,
                   threads: int = 1, devices=None, extra_starts=None):
        """Fit ``n`` spectra in chunks with this fitter's program, returning numpy dicts with a
        leading N axis.

        ``get_chunk(start, stop)`` returns the prepared ``(flux, ivar)`` of those rows, so only
        the chunks in flight are ever held as float arrays. Chunks are padded to one of a few
        fixed sizes (``chunk_size``, or for a small ``n`` the smallest power of two >= n), so
        a run compiles at most once per size. With ``threads > 1`` that many chunks run at
        once: JAX releases the GIL while a compiled program runs, and on a CPU one small
        spectrum per program leaves the other cores idle.

        With ``devices`` (two or more JAX devices) each chunk is sharded over them along the
        spectrum axis (``jax.sharding.NamedSharding``); the chunk size is rounded up to a
        multiple of the device count.
        """
        chunk = max(1, min(chunk_size, 1 << max(n - 1, 0).bit_length()))
        sharding = None
        if devices is not None and len(devices) > 1:
            from jax.sharding import Mesh, NamedSharding, PartitionSpec

            nd = len(devices)
            chunk = -(-chunk // nd) * nd
            sharding = NamedSharding(Mesh(np.asarray(devices), ("spectra",)), PartitionSpec("spectra"))
        design = jnp.asarray(self.design_np, self.dtype)
        keep_model = {"model", "model_1", "model_2", "continuum"}

        def work(start):
            stop = min(start + chunk, n)
            f, iv = get_chunk(start, stop)
            d = np.ones((chunk, f.shape[1]))
            w = np.zeros((chunk, f.shape[1]))
            d[: stop - start] = f
            w[: stop - start] = iv
            d, w = np.asarray(d, self.dtype), np.asarray(w, self.dtype)
            z = np.zeros((chunk, len(self.bm.spec.free)), self.dtype)
            if extra_starts is not None:
                z[: stop - start] = extra_starts[start:stop]
            if sharding is not None:
                d, w, z = (jax.device_put(x, sharding) for x in (d, w, z))
            # a model that is not a pytree of arrays is closed over by _fit_one, not passed in
            leaves = self.model_leaves if self._model_is_tree else ()
            res = self._run(leaves, self.templates, design, d, w, z)
            if not return_model:
                res = {k: v for k, v in res.items() if k not in keep_model}
            res = {k: np.asarray(v)[: stop - start] for k, v in jax.device_get(res).items()}
            if return_model:
                res.update(data=f, ivar=iv)
            return res

        starts = range(0, n, chunk)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, unit="spectra", desc="fit_binary_batch")
        parts = []
        pool = None
        if threads > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=threads)
        try:
            # Results come back in order; with a pool, later chunks run while earlier ones finish.
            for a, res in zip(starts, map(work, starts) if pool is None else pool.map(work, starts),
                              strict=True):
                parts.append(res)
                if bar is not None:
                    bar.update(min(a + chunk, n) - a)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            if bar is not None:
                bar.close()
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def result(self, raw: dict, *, bic_threshold: float, batched: bool) -> BinaryFit:
        spec, sspec = self.bm.spec, self.sbm.spec
        names, free = spec.names, spec.free
        n_good = raw["n_good"].astype(np.int64)
        n_cont = raw["n_cont"].astype(np.int64)
        k_bin = len(free) + n_cont
        k_single = len(sspec.free) + n_cont
        too_few = n_good < k_bin + 1
        chi2 = raw["chi2"].astype(np.float64)
        schi2 = raw["single_chi2"].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            logn = np.log(np.maximum(n_good, 1))
        bic_b = chi2 + k_bin * logn
        bic_s = schi2 + k_single * logn
        # Errors count as well as the cost and the values: where the data do not constrain a
        # parameter at all (a flux of zeros, errors of 1e9) its variance overflows float32 to inf,
        # and a result with flag 0 must hold no non-finite number.
        finite = (raw["finite"] & np.all(np.isfinite(raw["errors"]), axis=1)
                  & np.all(np.isfinite(raw["cov"]), axis=(1, 2)))
        single_finite = raw["single_finite"] & np.all(np.isfinite(raw["single_errors"]), axis=1)
        flag = np.zeros(n_good.shape, dtype=np.int64)
        flag |= np.where(~raw["converged"], FLAGS["not_converged"], 0)
        flag |= np.where(~finite, FLAGS["non_finite"], 0)
        flag |= np.where(~raw["single_converged"], FLAGS["single_not_converged"], 0)
        flag |= np.where(~single_finite, FLAGS["single_non_finite"], 0)
        flag |= np.where(too_few, FLAGS["too_few_pixels"], 0)
        # modes: distinct basins of the binary fit (other velocity pairs), best first
        modes_chi2 = np.where(too_few[:, None], np.inf, raw["modes_chi2"].astype(np.float64))
        n_modes = np.sum(np.isfinite(modes_chi2), axis=1)
        with np.errstate(invalid="ignore"):
            runner_up = modes_chi2[:, 1] - modes_chi2[:, 0]
        runner_up = np.where(n_modes >= 2, runner_up, np.inf)
        ambiguous = runner_up <= MODE_DELTA_CHI2
        flag |= np.where(ambiguous, FLAGS["ambiguous"], 0)
        is_bin = ((bic_s - bic_b) > bic_threshold) & ~too_few
        lab_b, rv_b = _bound_hits(spec, raw["values"], self.bm.model.label_names)
        lab_s, rv_s = _bound_hits(sspec, raw["single_values"], self.bm.model.label_names)
        flag |= np.where(np.where(is_bin, lab_b, lab_s), FLAGS["label_at_bound"], 0)
        flag |= np.where(np.where(is_bin, rv_b, rv_s), FLAGS["rv_at_bound"], 0)
        bad = too_few[:, None]

        def cols(arr, nm):
            arr = np.where(bad if arr.ndim == 2 else bad[:, :, None], np.nan, arr.astype(np.float64))
            return {k: arr[..., i] for i, k in enumerate(nm)}

        def pick(x):
            return x if batched else x[0]

        def pick_dict(dct):
            return {k: pick(v) for k, v in dct.items()}

        cov = np.where(bad[:, :, None], np.nan, raw["cov"].astype(np.float64))
        delta = schi2 - chi2
        fields = dict(
            params=pick_dict(cols(raw["values"], names)),
            errors=pick_dict(cols(raw["errors"], names)),
            covariance=pick(cov),
            chi2=pick(np.where(too_few, np.nan, chi2)),
            dof=pick(n_good - k_bin),
            n_iter=pick(raw["n_iter"].astype(np.int64)),
            converged=pick(raw["converged"].astype(bool)),
            at_bound=pick_dict({k: raw["at_bound"][:, i].astype(bool) for i, k in enumerate(free)}),
            single_params=pick_dict(cols(raw["single_values"], names)),
            single_errors=pick_dict(cols(raw["single_errors"], names)),
            single_chi2=pick(np.where(too_few, np.nan, schi2)),
            delta_chi2=pick(np.where(too_few, np.nan, delta)),
            bic_single=pick(np.where(too_few, np.nan, bic_s)),
            bic_binary=pick(np.where(too_few, np.nan, bic_b)),
            is_binary=pick(is_bin),
            flag=pick(flag),
            local_params=pick_dict(cols(raw["local_values"], names)),
            local_chi2=pick(raw["local_chi2"].astype(np.float64)),
            modes={"chi2": pick(modes_chi2), **{k: pick(np.where(np.isfinite(modes_chi2), v, np.nan))
                                                for k, v in cols(raw["modes_values"], names).items()}},
            n_modes=pick(n_modes),
            runner_up_delta_chi2=pick(runner_up),
            ambiguous=pick(ambiguous),
            n_pixels=pick(n_good),
            continuum_degree=pick(raw["continuum_degree"].astype(np.int64)),
            wave=self.bm.wave,
            flux=pick(raw["data"]) if "data" in raw else None,
            ivar=pick(raw["ivar"]) if "data" in raw else None,
        )
        for k in ("model", "model_1", "model_2", "continuum"):
            fields[k] = pick(raw[k].astype(np.float64)) if k in raw else None
        return BinaryFit(**fields, names=names, free=free, units=tuple(spec[n].unit for n in names),
                         ref_wave=self.bm.ref_wave, flux_ratio_mode=self.opts.flux_ratio_mode,
                         bic_threshold=float(bic_threshold))


def _objective(bm, spec, d, w, design):
    """``(residual(z), linearize(z))`` of one spectrum for Levenberg-Marquardt: the weighted
    residual with the continuum solved linearly, and the model's block-structured Jacobian
    mapped to the unconstrained z and through the continuum solve."""
    sw = jnp.sqrt(w)

    def residual(z):
        m = bm.flux(spec.from_unconstrained(z))
        cont, _ = solve_continuum(m, d, w, design)
        return sw * (m * cont - d)

    def linearize(z):
        m, jt = bm.flux_and_jacobian(spec.from_unconstrained(z))
        return projected_residual(m, jt * _dvdz(spec, z)[:, None], d, w, design)

    return residual, linearize


def local_fits(starts: dict, flux, wave, err=None, ivar=None, model=None, resolution=None, *,
               unnormalized=None, max_iter: int = 60, **options) -> dict:
    """Levenberg-Marquardt from given starts on one spectrum, each to convergence.

    The local step of :func:`fit_binary` without its global search: e.g. for an exhaustive
    reference search (a start in every cell of a velocity grid) against which the global
    search is checked (``benchmarks/bench_stress.py``).

    Args:
        starts: ``{name: (S,) array}`` for every parameter of the binary model (values
            outside the bounds are clipped 0.1 % inside).
        flux: (P,) observed flux of one spectrum.
        wave: (P,) vacuum wavelengths [A].
        err, ivar: (P,) 1-sigma errors or inverse variance (one of them).
        model: spectral model; None (default): the model that covers the observed pixels
            (:func:`jaxspec.models.auto.choose_model`: the bundled emulator inside 4950-5350 A,
            else the line-list generator on the observed segments of 3800-9000 A, else an
            installed APOGEE model); pixels outside it are left out.
        resolution: instrument resolving power R (a number or (P,) per pixel; None = no LSF).
        unnormalized, options: as :func:`fit_binary`; with ``continuum_degree="auto"`` each
            start's continuum degree is decided as by the fit (normalized flux: degree 2, else
            the BIC) against the start's model: pass a
            fit's ``continuum_degree`` (one per segment) to fit with its continuum.
        max_iter: iterations per start.

    Returns:
        ``{name: (S,) array}`` of the solutions with ``"chi2"`` (S,) and ``"converged"`` (S,).
    """
    flux, wave, ivar = prepare_spectrum(flux, wave, err, ivar)
    model, wave, resolution, (flux, ivar), _ = _auto_model(
        model, wave, resolution, (flux, ivar), np.any(np.atleast_2d(ivar) > 0, axis=0))
    opts = _options(model, **options)
    fitter = _get_fitter(model, wave, resolution, opts, unnormalized)
    spec = fitter.bm.spec
    missing = [n for n in spec.names if n not in starts]
    if missing:
        raise ValueError(f"starts lacks {missing}")
    key = ("local_fits", int(max_iter))
    run = fitter._extra.get(key)
    if run is None:
        design = jnp.asarray(fitter.design_np, fitter.dtype)

        def one(z, d, w):
            # "auto": decided as by the fit (normalized flux: degree 2), at the start's model
            _, des = fitter.auto_design(fitter.bm.flux(spec.from_unconstrained(z)), d, w, design)
            res, lin = _objective(fitter.bm, spec, d, w, des)
            f = levenberg_marquardt(res, z, max_iter=max_iter, ftol=opts.ftol, linearize_fn=lin)
            return _stack(spec, spec.from_unconstrained(f.z)), 2.0 * f.cost, f.converged

        run = fitter._extra[key] = jax.jit(lambda zs, d, w: jax.lax.map(lambda z: one(z, d, w), zs))
    lo = np.array([spec[n].lower for n in spec.names])
    hi = np.array([spec[n].upper for n in spec.names])
    th = np.stack([np.atleast_1d(np.asarray(starts[n], np.float64)) for n in spec.names], axis=-1)
    th = np.clip(th, lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo))
    zs = jax.vmap(lambda t: spec.to_unconstrained({n: t[i] for i, n in enumerate(spec.names)}))(
        jnp.asarray(th, fitter.dtype))
    vals, chi2, conv = run(zs, jnp.asarray(flux, fitter.dtype), jnp.asarray(ivar, fitter.dtype))
    out = {n: np.asarray(vals[:, i], np.float64) for i, n in enumerate(spec.names)}
    out.update(chi2=np.asarray(chi2, np.float64), converged=np.asarray(conv, bool))
    return out


def _with_model(bm, model):
    new = object.__new__(type(bm))
    new.__dict__.update(bm.__dict__)
    new.model = model
    return new


def _stack(spec, theta):
    return jnp.stack([jnp.asarray(theta[n], jnp.result_type(float)) for n in spec.names])


def _dvdz(spec, z):
    lo, hi = (jnp.asarray(b, z.dtype) for b in spec.bounds().T)
    s = jax.nn.sigmoid(z)
    return (hi - lo) * s * (1.0 - s)


def _cov(spec, z, jtj):
    """Covariance of the free parameters in physical units: (J^T J)^+ in z, mapped by dv/dz.

    The inverse is taken of the unit-diagonal (Jacobi-scaled) matrix: in z the
    diagonal spans many decades (an rv in a +-500 km/s box against a vsini of a
    few km/s near its bound), and a pseudo-inverse of the raw matrix in float32
    cuts the weakly constrained directions to zero variance (a vsini error of
    0.01 km/s where the posterior's is 3 km/s)."""
    g = _dvdz(spec, z)
    d = jnp.diag(jtj)
    s = jnp.where(d > 0, 1.0 / jnp.sqrt(jnp.where(d > 0, d, 1.0)), 0.0)
    cz = jnp.linalg.pinv(jtj * jnp.outer(s, s), hermitian=True) * jnp.outer(s, s)
    return cz * jnp.outer(g, g)


def _errors(spec, z, jtj, names=None):
    """1-sigma errors for ``names`` (default all of ``spec``), 0 for fixed parameters."""
    names = spec.names if names is None else names
    sig = jnp.sqrt(jnp.maximum(jnp.diag(_cov(spec, z, jtj)), 0.0))
    by_name = dict(zip(spec.free, [sig[i] for i in range(len(spec.free))], strict=True))
    return jnp.stack([by_name.get(n, jnp.zeros((), sig.dtype)) for n in names])


def _bound_hits(spec, values, label_names, rtol=1e-3):
    """(labels at a bound, rv at a bound): two (N,) bools for (N, n_names) ``values`` in
    ``spec.names`` order; free parameters within ``rtol`` of their range from a bound."""
    values = np.asarray(values, dtype=np.float64)
    lab = np.zeros(values.shape[0], bool)
    rv = np.zeros(values.shape[0], bool)
    for i, n in enumerate(spec.names):
        p = spec[n]
        if p.fixed is not None:
            continue
        tol = rtol * (p.upper - p.lower)
        hit = (values[:, i] <= p.lower + tol) | (values[:, i] >= p.upper - tol)
        base = n[:-2] if n[-2:] in ("_1", "_2") else n
        if n in ("rv_1", "rv_2"):
            rv |= hit
        elif base in label_names:
            lab |= hit
    return lab, rv


def _at_bound(spec, z):
    u = jax.nn.sigmoid(z)
    return (u < 1e-3) | (u > 1.0 - 1e-3)


# ------------------------------------------------------------------ public calls


def _get_fitter(model, wave, resolution, opts, unnormalized):
    try:
        res_key = None if resolution is None else hashlib.sha1(np.ascontiguousarray(
            np.asarray(resolution, dtype=np.float64)).tobytes()).hexdigest()
    except (TypeError, ValueError) as err:
        raise ValueError(f"resolution must be a number or one value per pixel, got {resolution!r}") from err
    key = (id(model), id(unnormalized), hashlib.sha1(wave.tobytes()).hexdigest(), res_key, opts)
    f = _FITTERS.get(key)
    if f is None or f[0] is not model:
        if len(_FITTERS) >= _MAX_FITTERS:
            _FITTERS.pop(next(iter(_FITTERS)))
        f = (model, _Fitter(model, wave, resolution, opts, unnormalized))
        _FITTERS[key] = f
    return f[1]


def _chosen_degrees(degrees):
    """A fit's ``continuum_degree`` (one per segment) as an option: one number where every
    segment has the same (so that it selects the same fitter, and compiled programs, as that
    number given by hand), else a tuple."""
    deg = tuple(int(g) for g in np.ravel(degrees))
    return deg[0] if len(set(deg)) == 1 else deg


def _continuum_option(degree):
    """``"auto"``, an int or a tuple of ints (one per segment), checked."""
    if isinstance(degree, str):
        if degree != "auto":
            raise ValueError(f"continuum_degree must be 'auto', a number or one number per segment, got {degree!r}")
        return "auto"
    arr = np.asarray(degree)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size == 0 or not np.all(arr == np.round(arr)):
        raise ValueError(f"continuum_degree must be 'auto', an integer or one integer per segment, got {degree!r}")
    if np.any(arr < 0):
        raise ValueError(f"continuum_degree must be >= 0, got {degree!r}")
    return int(arr) if arr.ndim == 0 else tuple(int(x) for x in arr)


def _options(model, *, flux_ratio_mode="constant", continuum_degree="auto", n_starts=3, n_secondary_starts=3,
             rv_range=300.0, rv_step=4.0, max_iter=60, explore_iter=8, ftol=1e-5, shared=("feh",),
             fixed=None, ref_wave=None, min_rv_difference=None, init="todcor"):
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if flux_ratio_mode not in MODES:
        raise ValueError(f"flux_ratio_mode must be one of {MODES}, got {flux_ratio_mode!r}")
    if n_starts < 1:
        raise ValueError(f"n_starts must be >= 1, got {n_starts}")
    if not (rv_range > 0 and rv_step > 0 and rv_step < rv_range):
        raise ValueError(f"need 0 < rv_step < rv_range, got rv_step {rv_step}, rv_range {rv_range}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    try:
        fixed = tuple(sorted((k, float(v)) for k, v in (fixed or {}).items()))
    except (TypeError, ValueError) as err:
        raise ValueError(f"fixed values must be numbers, got {fixed!r}") from err
    return _Options(
        flux_ratio_mode=flux_ratio_mode, continuum_degree=_continuum_option(continuum_degree), n_starts=int(n_starts),
        n_secondary_starts=int(n_secondary_starts),
        rv_range=float(rv_range), rv_step=float(rv_step), max_iter=int(max_iter),
        explore_iter=int(explore_iter), ftol=float(ftol), shared=tuple(shared),
        fixed=fixed, ref_wave=None if ref_wave is None else float(ref_wave),
        min_rv_difference=2.0 * float(rv_step) if min_rv_difference is None else float(min_rv_difference),
        init=init,
    )


_FIT_DOC_OPTIONS = """
        unnormalized: spectral model of unnormalized flux for ``"model"`` mode.
        bic_threshold: delta BIC above which ``is_binary`` is True (default
            :data:`BIC_THRESHOLD`).
        **options: the fit options below, by keyword.
        flux_ratio_mode: ``"constant"`` (default), ``"blackbody"`` or ``"model"``
            (needs ``unnormalized=``); see :class:`jaxspec.models.BinaryModel`.
        shared: labels common to both stars (default ``("feh",)``; ``()`` fits
            [Fe/H] per component).
        fixed: ``{name: value}`` parameters held fixed (e.g. ``{"vsini_1": 0.0}``).
        continuum_degree: Chebyshev degree of the continuum in each segment of ``wave``
            (segments split at gaps > 10 pixel steps): a number, one number per segment, or
            ``"auto"`` (the default): 2 for continuum-normalized flux (a flat model's
            continuum within 30 % of 1; fitted by the same program as ``continuum_degree=2``)
            and else chosen per segment by the BIC among 0..``AUTO_MAX_DEGREE`` (6) at the
            best explored binary (:func:`jaxspec.fit.continuum.choose_degrees`), so raw counts
            with an echelle blaze fit as well as normalized flux. The degrees used are in the
            result's ``continuum_degree``.
        n_starts: 2D TODCOR peaks refined by Levenberg-Marquardt (default 3).
        n_secondary_starts: further starts from a 1D TODCOR over rv_2 with the
            single-star fit as the primary's template (one more start puts
            the single-star fit in component 1 with the best 2D peak's
            secondary; default 3).
        rv_range, rv_step: TODCOR velocity grid, -rv_range..rv_range [km/s] in
            steps of rv_step [km/s] (default 300 and 4); the rv bounds of the
            fit are +-1.5 rv_range.
        min_rv_difference: TODCOR points with ``|rv_1 - rv_2|`` below this
            [km/s] are not used as starts (default 2 rv_step).
        max_iter: Levenberg-Marquardt iterations for the best start (polishing;
            default 60).
        explore_iter: iterations from every start before the best is polished
            (default 8).
        ftol: convergence test on the relative decrease of chi2 per step
            (default 1e-5).
        ref_wave: wavelength [A] at which flux_ratio is defined (default: the
            geometric middle of the model grid).
        init: ``"todcor"`` (default) or ``"amortized"``: the bundled amortized network's
            prediction (:mod:`jaxspec.amortized`, trained on the default band at R 7,500)
            and its mirror join the TODCOR starts; with the default model only."""


_with_fit_options = fill_doc("fit options", _FIT_DOC_OPTIONS)


@_with_fit_options
def fit_binary_batch(
    flux,
    wave,
    err=None,
    ivar=None,
    model=None,
    resolution=None,
    *,
    chunk_size: int | None = None,
    threads: int | None = None,
    return_model: bool = False,
    progress: bool = False,
    devices=None,
    bic_threshold: float = BIC_THRESHOLD,
    unnormalized=None,
    instrument: str | None = None,
    **options,
) -> BinaryFit:
    """Fit binary and single-star models to a stack of spectra on one wavelength grid.

    Spectra are fitted ``chunk_size`` at a time by one compiled, ``vmap``-ped
    program, ``threads`` chunks at once. Chunks are padded to a fixed size, so
    a long run compiles once. The defaults suit the backend: on a CPU one
    spectrum per chunk and one thread per core (vmapped iterative fits run as
    long as their slowest member, and a CPU gains nothing from wider
    batches: with the binspec network on the APOGEE grid a chunk of 4 took
    1.5x longer per spectrum than chunks of 1); on a GPU or TPU 256 spectra
    per chunk in one thread.

    Memory: the input arrays as given, plus the chunks in flight converted to
    float64 (``threads`` x ``chunk_size`` x P x 16 bytes) and their working
    sets, plus the (N, n_parameters) results; the model spectra only with
    ``return_model`` (4 x N x P x 8 bytes). Measured for 10,000 x 8,000 pixels
    (float32 flux and errors, 640 MB) at R = 7,500 with the default model:
    peak resident memory 1.7 GB (``benchmarks/bench_memory.py``).
    A spectrum that cannot be fitted (all pixels masked, too few pixels)
    gets a flag and NaN values; it never stops the batch.

    Args:
        flux: (N, P) observed flux (continuum need not be normalized).
        wave: (P,) vacuum wavelengths [A] shared by all spectra, increasing,
            inside the model grid.
        err, ivar: (N, P) 1-sigma errors or inverse variances (one of them;
            neither means unit weights). Non-finite pixels are masked.
        model: spectral model; None (default): the model that covers the observed pixels
            (:func:`jaxspec.models.auto.choose_model`: the bundled emulator inside 4950-5350 A,
            else the line-list generator on the observed segments of 3800-9000 A, else an
            installed APOGEE model); pixels outside it are left out.
        resolution: resolving power (a number or (P,) per pixel); None: no LSF.
        instrument: an instrument preset, as :func:`fit_binary`.
        chunk_size: spectra per compiled call (default: 1 on a CPU, 256 otherwise).
        threads: chunks fitted concurrently (default: the usable CPU cores on
            a CPU, 1 otherwise).
        return_model: also return the model spectra, (N, P) each.
        progress: show a tqdm progress bar.
        devices: JAX devices to shard each chunk over along the spectrum axis
            (``jax.sharding``), e.g. ``jax.devices()`` on a machine with several
            GPUs; ``"all"`` means every local device; ``"auto"`` every local
            device when there are several accelerators (on a CPU, only with
            ``chunk_size > 1``). Default None: no sharding (one device). The
            chunk size is rounded up to a multiple of the device count; each
            device then runs the program of an unsharded run with
            ``chunk_size / n_devices``, and the results are bit-identical to
            that run's.
        [fit options]

    Returns:
        A batch :class:`~jaxspec.fit.result.BinaryFit` (fields with a leading N
        axis; ``fit[i]`` is spectrum i).

    Raises:
        ValueError: shape mismatch, bad wavelengths, no overlap with the model
            (both ranges named), negative errors, bad options.
    """
    wave = check_wavelengths(wave, "wave", min_size=10)
    resolution, options = _apply_instrument(instrument, wave, resolution, options)
    flux = np.asarray(flux)
    if flux.ndim != 2:
        raise ValueError(f"fit_binary_batch needs an (N, P) stack, got shape {flux.shape}; use fit_binary")
    err = None if err is None else np.asarray(err)
    ivar = None if ivar is None else np.asarray(ivar)
    for name, x in (("err", err), ("ivar", ivar)):
        if x is not None and x.shape != flux.shape:
            raise ValueError(f"{name} has shape {x.shape} but flux has {flux.shape}")
    usable = np.any(np.isfinite(flux), axis=0)
    if ivar is not None:
        usable &= np.any(ivar > 0, axis=0)
    model, wave, resolution, (flux, err, ivar), info = _auto_model(model, wave, resolution, (flux, err, ivar),
                                                                    usable)
    n = flux.shape[0]
    # Check everything before fitting anything (a bad value must not stop a run half-way);
    # in blocks, so that no full float64 copy of the stack is ever made.
    block = 1024

    def get_chunk(a, b):
        f, _, iv = prepare_spectrum(flux[a:b], wave, None if err is None else err[a:b],
                                    None if ivar is None else ivar[a:b])
        return f, iv

    for a in range(0, n, block):
        get_chunk(a, min(a + block, n))
    chunk_size, threads = _batch_defaults(chunk_size, threads)
    opts = _options(model, **options)
    fitter = _get_fitter(model, wave, resolution, opts, unnormalized)
    if isinstance(devices, str):
        if devices not in ("all", "auto"):
            raise ValueError(f"devices must be a list of JAX devices, None, 'all' or 'auto', "
                             f"got {devices!r}")
        mode, devices = devices, jax.local_devices()
        if mode == "auto" and (len(devices) < 2 or (devices[0].platform == "cpu" and chunk_size == 1)):
            devices = None  # one device, or CPU "devices" that one spectrum per call cannot use
    extra = _amortized_starts(fitter, flux, wave, err, ivar, resolution) if opts.init == "amortized" else None
    raw = fitter.run(get_chunk, n, chunk_size=chunk_size, return_model=return_model, progress=progress,
                     threads=threads, devices=None if devices is None else list(devices), extra_starts=extra)
    return dataclasses.replace(fitter.result(raw, bic_threshold=bic_threshold, batched=True), model_info=info)


def _amortized_starts(fitter, flux, wave, err, ivar, resolution):
    """(N, n_free) unconstrained starts from the bundled amortized network's prediction."""
    from jaxspec.amortized import default_predictor

    pred = default_predictor()
    r = None if resolution is None or np.ndim(resolution) else float(resolution)
    if r is None or not 0.5 * pred.resolution <= r <= 2.0 * pred.resolution:
        raise ValueError(f"init='amortized' needs a scalar resolution within a factor 2 of the network's "
                         f"R = {pred.resolution:g}; got {resolution}")
    st = pred.starts(flux, wave, err, ivar)
    spec = fitter.bm.spec
    th = {}
    for name in spec.names:
        p = spec[name]
        v = np.asarray(st[name] if name in st else np.full(len(flux), fitter._start_value(name)), np.float64)
        margin = 1e-3 * (p.upper - p.lower)
        th[name] = jnp.asarray(np.clip(v, p.lower + margin, p.upper - margin), fitter.dtype)
    return np.asarray(jax.vmap(spec.to_unconstrained)(th))


def _batch_defaults(chunk_size, threads):
    """Backend-dependent chunk size and thread count (see :func:`fit_binary_batch`)."""
    cpu = jax.default_backend() == "cpu"
    if chunk_size is None:
        chunk_size = 1 if cpu else 256
    if threads is None:
        from jaxspec._machine import usable_cores

        threads = usable_cores() if cpu else 1
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(chunk_size), int(threads)


@_with_fit_options
def fit_binary(
    flux,
    wave,
    err=None,
    ivar=None,
    model=None,
    resolution=None,
    *,
    bic_threshold: float = BIC_THRESHOLD,
    unnormalized=None,
    instrument: str | None = None,
    **options,
) -> BinaryFit:
    """Fit a double-lined binary (and a single star) to one spectrum.

    Args:
        flux: (P,) observed flux (continuum need not be normalized).
        wave: (P,) vacuum wavelengths [A], increasing, inside the model grid.
        err, ivar: (P,) 1-sigma errors or inverse variance (one of them;
            neither means unit weights). Non-finite pixels are masked.
        model: spectral model; None (default): the model that covers the observed pixels
            (:func:`jaxspec.models.auto.choose_model`: the bundled emulator inside 4950-5350 A,
            else the line-list generator on the observed segments of 3800-9000 A, else an
            installed APOGEE model); pixels outside it are left out.
        resolution: instrument resolving power, a number or (P,) per pixel
            (None = no LSF, e.g. for a model that includes the instrument).
        instrument: a preset of :data:`jaxspec.instruments.INSTRUMENTS` (``"galah"``,
            ``"lamost-mrs"``, ``"lamost-lrs"``, ``"sdss"``, ``"harps"``, ``"apogee"``, ...): its
            resolution when ``resolution`` is None, its continuum degree per segment when
            ``continuum_degree`` is not given; the spectrum must lie in its reach.
        [fit options]

    Returns:
        :class:`~jaxspec.fit.result.BinaryFit` with the binary and single-star
        fits, model comparison, flags, and the model spectra.

    Raises:
        ValueError: shape mismatch, unsorted or non-finite wavelengths,
            wavelengths outside the model (both ranges named), all pixels
            masked, fewer usable pixels than parameters, negative errors, an
            unknown instrument or one whose reach the spectrum leaves.
    """
    flux, wave, ivar = prepare_spectrum(flux, wave, err, ivar)
    resolution, options = _apply_instrument(instrument, wave, resolution, options)
    if flux.ndim != 1:
        raise ValueError(f"fit_binary fits one spectrum, shape (P,); got {flux.shape}: use fit_binary_batch")
    n_good = int(np.sum(ivar > 0))
    if n_good == 0:
        raise ValueError("all pixels are masked (non-finite flux or err, or ivar = 0)")
    model, wave, resolution, (flux, ivar), info = _auto_model(
        model, wave, resolution, (flux, ivar), np.any(np.atleast_2d(ivar) > 0, axis=0))
    n_good = int(np.sum(ivar > 0))
    opts = _options(model, **options)
    fitter = _get_fitter(model, wave, resolution, opts, unnormalized)
    # continuum_degree="auto": normalized flux is fitted at degree NORMALIZED_DEGREE, other
    # flux needs at least a scale per segment
    used = fitter
    if fitter.auto_continuum and fitter.normalized_rows(lambda a, b: (flux[None], ivar[None]), 1)[0]:
        used = fitter.normalized_fitter()
    n_par = len(used.bm.spec.free) + (used.n_segments if used.auto_continuum else used.n_cont)
    if n_good <= n_par:
        raise ValueError(f"only {n_good} usable pixels for {n_par} parameters (incl. continuum)")
    extra = (_amortized_starts(fitter, flux[None], wave, None, ivar[None], resolution)
             if opts.init == "amortized" else None)
    raw = fitter.run(lambda a, b: (flux[None], ivar[None]), 1, chunk_size=1, return_model=True, extra_starts=extra)
    return dataclasses.replace(fitter.result(raw, bic_threshold=bic_threshold, batched=False), model_info=info)


def fit_single(flux, wave, err=None, ivar=None, model=None, resolution=None, **options) -> BinaryFit:
    """Fit a single star: :func:`fit_binary` with ``flux_ratio`` fixed at 0.

    The result's ``params`` hold the single-star solution (the secondary's
    parameters are fixed and meaningless).

    Args:
        flux: (P,) observed flux (continuum need not be normalized).
        wave: (P,) vacuum wavelengths [A], increasing, inside the model grid.
        err, ivar: (P,) 1-sigma errors or inverse variance (one of them;
            neither means unit weights).
        model: spectral model; None (default): the model that covers the observed pixels
            (:func:`jaxspec.models.auto.choose_model`: the bundled emulator inside 4950-5350 A,
            else the line-list generator on the observed segments of 3800-9000 A, else an
            installed APOGEE model); pixels outside it are left out.
        resolution: instrument resolving power, a number or (P,) per pixel
            (None = no LSF).
        **options: as :func:`fit_binary` (``fixed`` is extended with
            ``flux_ratio = 0``).

    Returns:
        :class:`~jaxspec.fit.result.BinaryFit`.
    """
    fixed = dict(options.pop("fixed", None) or {})
    fixed.setdefault("flux_ratio", 0.0)
    return fit_binary(flux, wave, err, ivar, model, resolution, fixed=fixed, **options)


def chi2_at(params: dict, flux, wave, err=None, ivar=None, model=None, resolution=None, *,
            unnormalized=None, chunk_size: int = 64, **options):
    """Chi-square of given parameters, with the continuum solved as in the fit.

    The same objective that :func:`fit_binary` minimizes, e.g. to check that
    a fit reached at least the chi-square of the true parameters.

    Args:
        params: ``{name: (N,) array}`` for every parameter of the binary model.
        flux, err / ivar: (N, P) spectra; wave: (P,); model, resolution and
            options as :func:`fit_binary_batch`. ``continuum_degree`` may also be (N, S), a
            degree per spectrum and segment (a batch fit's ``continuum_degree``), for the chi2
            with the fit's continuum; ``"auto"`` decides as the fit does (normalized flux:
            degree 2, else the BIC), at ``params``.

    Returns:
        (N,) chi-square.
    """
    flux, wave, ivar = prepare_spectrum(flux, wave, err, ivar)
    flux, ivar = np.atleast_2d(flux), np.atleast_2d(ivar)
    model, wave, resolution, (flux, ivar), _ = _auto_model(
        model, wave, resolution, (flux, ivar), np.any(np.atleast_2d(ivar) > 0, axis=0))
    per_spectrum = np.ndim(options.get("continuum_degree", "auto")) == 2
    degrees = np.asarray(options.pop("continuum_degree")) if per_spectrum else None
    fitter = _get_fitter(model, wave, resolution, _options(
        model, **options, **({"continuum_degree": "auto"} if per_spectrum else {})), unnormalized)
    bm = fitter.bm
    missing = [n for n in bm.spec.names if n not in params]
    if missing:
        raise ValueError(f"params lacks {missing}")
    design = jnp.asarray(fitter.design_np, fitter.dtype)
    pix, cseg, cdeg, _ = fitter.layout
    if per_spectrum:
        if degrees.shape != (flux.shape[0], fitter.n_segments) or np.any(degrees < 0) or np.any(
                degrees > AUTO_MAX_DEGREE):
            raise ValueError(f"continuum_degree per spectrum must be (N, S) = {(flux.shape[0], fitter.n_segments)} "
                             f"integers in 0..{AUTO_MAX_DEGREE}, got {degrees.shape} {degrees.dtype}")
        masks = cdeg[None, :] <= degrees[:, cseg]
    else:
        masks = np.ones((flux.shape[0], design.shape[1]), bool)

    def one(theta, d, w, mask):
        m = bm.flux(theta)
        des = design * mask.astype(design.dtype)
        if not per_spectrum:
            _, des = fitter.auto_design(m, d, w, des)
        cont, _ = solve_continuum(m, d, w, des)
        return jnp.sum(w * (m * cont - d) ** 2)

    run = jax.jit(jax.vmap(one))
    out = []
    for a in range(0, flux.shape[0], chunk_size):
        th = {n: jnp.asarray(np.atleast_1d(params[n])[a:a + chunk_size], fitter.dtype) for n in bm.spec.names}
        out.append(np.asarray(run(th, jnp.asarray(flux[a:a + chunk_size], fitter.dtype),
                                  jnp.asarray(ivar[a:a + chunk_size], fitter.dtype),
                                  jnp.asarray(masks[a:a + chunk_size]))))
    return np.concatenate(out).astype(np.float64)
