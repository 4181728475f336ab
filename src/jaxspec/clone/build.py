"""Building a clone: detect lines, fit pseudo-Voigt parameters per grid spectrum, keep the grid.

The pipeline of :func:`clone_grid`:

1. Check the grid: (N, L) labels on a rectilinear grid (every combination of the
   unique values of every label present once), (N, P) finite flux, (P,) increasing
   wavelengths; a grid not uniform in ln(lambda) (PHOENIX) is resampled onto one.
2. Detect lines in every grid spectrum (local flux minima deeper than ``min_depth``,
   centred to a fraction of a pixel by a parabola), and match them across the grid by
   their centres: detections of all spectra within ``merge_pixels`` of each other are
   one line. Every grid spectrum is then fitted with the same line list, starting
   from the same centres, so line ``l`` means the same feature at every grid point.
3. Fit, for every grid spectrum at once (one jitted, vmapped optax program), each
   line's centre offset (within +-``max_shift`` pixels), ln amplitude, Gaussian and
   Lorentzian widths, and the spectrum's saturation floor, by Adam on the mean squared
   flux residual. Amplitudes have a soft floor at ``exp(LN_AMP_MIN)``: a line absent at
   some grid points fades to a vanishing amplitude instead of running off to a huge
   negative ln amplitude, so interpolation and gradients stay tame.
4. With ``passes=2`` (default), residual minima left by the first fit (blended lines
   that showed no minimum of their own) are added as lines and all spectra refitted.

The fitted parameters, on the grid, make a :class:`~jaxspec.clone.ClonedModel`.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.clone.model import LINE_PARAMS, ClonedModel, line_flux, window_groups
from jaxspec.physics.constants import C_KMS
from jaxspec.physics.grid import check_wavelengths, log_lambda_grid
from jaxspec.physics.voigt import pseudo_voigt_params

__all__ = ["CloneReport", "check_rectilinear", "clone_grid", "clone_phoenix", "detect_lines"]

#: Soft lower bound of a line's ln amplitude [ln pixels]: amplitudes fade to ~1e-6, not 0.
LN_AMP_MIN = float(np.log(1e-6))
#: First-pass half windows [km/s] by the line's largest depth over the grid (depth edges
#: in ``_DEPTH_EDGES``): weak lines reach 24 km/s, the deepest 900 km/s. The second pass
#: sizes each window from the first fit's profile instead (:func:`_fitted_windows`).
WINDOW_KMS = (24.0, 48.0, 100.0, 300.0, 900.0)
#: A line's window ends where its optical depth falls below this anywhere on the grid.
WINDOW_TAU = 1e-3
_MAX_WINDOW_KMS = 3000.0
_DEPTH_EDGES = (0.2, 0.4, 0.6, 0.8)
_SIGMA_RANGE = (0.15, 40.0)  # pixels
_GAMMA_RANGE = (1e-3, 40.0)  # pixels
_FLOOR_MAX = 0.6


@dataclasses.dataclass(frozen=True)
class CloneReport:
    """What :func:`clone_grid` measured.

    Attributes:
        n_lines: lines in the clone.
        n_detected: lines found by the first detection (before residual lines were added).
        rms: (N,) rms of ``clone - grid`` flux per grid spectrum (normalized flux), in the
            order of the grid rows as given.
        seconds: wall time of the build [s].
        steps: Adam steps of the final pass (the first of two passes runs half as many).
        resampled: whether the grid was resampled onto a uniform ln(lambda) grid.
    """

    n_lines: int
    n_detected: int
    rms: np.ndarray
    seconds: float
    steps: int
    resampled: bool

    def as_dict(self) -> dict:
        """JSON-ready summary (median, 95th percentile and largest rms; counts; seconds)."""
        return {
            "n_lines": self.n_lines, "n_detected": self.n_detected, "steps": self.steps,
            "rms_median": float(np.median(self.rms)), "rms_p95": float(np.percentile(self.rms, 95)),
            "rms_max": float(np.max(self.rms)), "seconds": self.seconds, "resampled": self.resampled,
        }


def check_rectilinear(labels, label_names):
    """Grid axes of labels on a rectilinear grid, and each row's position on it.

    Args:
        labels: (N, L) labels in label units (teff [K], logg and feh [dex], ...).
        label_names: the L names (for messages).

    Returns:
        ``(axes, index)``: L increasing arrays of unique values and an (N, L) int array
        of each row's index along every axis.

    Raises:
        ValueError: a non-finite label, fewer than 2 values on an axis, a duplicate grid
            point, or a missing combination (the message names one).
    """
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[1] != len(label_names):
        raise ValueError(f"labels must have shape (N, {len(label_names)}); got {labels.shape}")
    if not np.all(np.isfinite(labels)):
        raise ValueError(f"grid labels hold non-finite values in rows {np.flatnonzero(~np.isfinite(labels).all(1))[:5].tolist()}")
    # Values equal to 1e-6 relative are one grid value (file labels carry rounding).
    axes, index = [], []
    for k, name in enumerate(label_names):
        col = labels[:, k]
        u = np.unique(np.round(col, 6))
        if u.size < 2:
            raise ValueError(f"grid axis {name!r} has a single value {u.tolist()}; a clone needs >= 2 per label")
        axes.append(u)
        index.append(np.searchsorted(u, np.round(col, 6)))
    index = np.stack(index, axis=1)
    shape = tuple(a.size for a in axes)
    flat = np.ravel_multi_index(index.T, shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape)))
    if np.any(counts > 1):
        dup = int(np.argmax(counts > 1))
        point = dict(zip(label_names, (float(a[i]) for a, i in zip(axes, np.unravel_index(dup, shape), strict=True)), strict=True))
        raise ValueError(f"the grid holds the point {point} more than once")
    if np.any(counts == 0):
        miss = int(np.argmax(counts == 0))
        point = dict(zip(label_names, (float(a[i]) for a, i in zip(axes, np.unravel_index(miss, shape), strict=True)), strict=True))
        dims = " x ".join(f"{a.size} {n}" for a, n in zip(axes, label_names, strict=True))
        raise ValueError(
            f"the grid is not rectilinear: {dims} values make {int(np.prod(shape))} combinations but "
            f"{labels.shape[0]} spectra are given ({int((counts == 0).sum())} missing, e.g. {point})"
        )
    return axes, index


def detect_lines(flux, *, min_depth: float = 0.005):
    """Absorption lines of one normalized spectrum: local minima deeper than ``min_depth``.

    Args:
        flux: (P,) continuum-normalized flux.
        min_depth: smallest depth ``1 - flux`` counted as a line.

    Returns:
        ``(pixel, depth)``: (n,) sub-pixel centres [pixels] (a parabola through the
        minimum and its neighbours) and (n,) depths.
    """
    f = np.asarray(flux, dtype=np.float64)
    i = np.flatnonzero((f[1:-1] < f[:-2]) & (f[1:-1] <= f[2:]) & (1.0 - f[1:-1] >= min_depth)) + 1
    a, b, c = f[i - 1], f[i], f[i + 1]
    den = a - 2 * b + c
    shift = np.where(den > 0, 0.5 * (a - c) / np.where(den > 0, den, 1.0), 0.0)
    return i + np.clip(shift, -0.5, 0.5), 1.0 - b


def _merge(pixels, depths, merge_pixels: float):
    """Detections of all spectra clustered into lines: (n_lines,) centres [pixels] and largest depths."""
    order = np.argsort(pixels)
    p, d = pixels[order], depths[order]
    centres, peak = [], []
    start = 0
    for k in range(1, p.size + 1):
        if k == p.size or p[k] - p[start] > merge_pixels:
            w = d[start:k]
            centres.append(float(np.sum(p[start:k] * w) / np.sum(w)))
            peak.append(float(w.max()))
            start = k
    return np.asarray(centres), np.asarray(peak)


def _half_windows(depth, pixel_kms):
    edges = np.searchsorted(np.asarray(_DEPTH_EDGES), depth)
    return np.maximum(np.ceil(np.asarray(WINDOW_KMS)[edges] / pixel_kms), 3).astype(np.int64)


def _fitted_windows(phys, pixel_kms):
    """Half windows [pixels] from fitted profiles: where ``tau`` drops below :data:`WINDOW_TAU`.

    The largest distance over the grid points at which either the Gaussian core or the
    Lorentzian wing of the line still reaches ``WINDOW_TAU`` (the same rule as the
    generator's windows), at least 4 pixels.
    """
    amp = np.exp(phys["ln_amp"])
    sigma, gamma = np.exp(phys["ln_sigma"]), np.exp(phys["ln_gamma"])
    hw, mix = (np.asarray(v) for v in pseudo_voigt_params(jnp.asarray(sigma), jnp.asarray(gamma)))
    peak_g = amp * (1 - mix) * np.sqrt(np.log(2) / np.pi) / hw
    x_g = hw * np.sqrt(np.maximum(np.log(np.maximum(peak_g / WINDOW_TAU, 1.0)), 0.0) / np.log(2))
    x_l = np.sqrt(np.maximum(amp * mix * hw / (np.pi * WINDOW_TAU) - hw**2, 0.0))
    reach = np.max(np.maximum(x_g, x_l), axis=0)
    return np.clip(np.ceil(reach + 1.0), 4, _MAX_WINDOW_KMS / pixel_kms).astype(np.int64)


def _to_log_lambda(flux, wave):
    """Resample a grid onto a uniform ln(lambda) grid if it is not one already."""
    dln = np.diff(np.log(wave))
    if np.ptp(dln) <= 1e-6 * np.mean(dln):
        return flux, wave, False
    pixel_kms = float(np.median(dln)) * C_KMS
    new = log_lambda_grid(wave[0], wave[-1], pixel_kms=pixel_kms)
    new = new[new <= wave[-1]]
    return np.stack([np.interp(new, wave, f) for f in flux]), new, True


def _bounded(u, lo, hi):
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    return mid + half * jnp.tanh(u)


def _unbounded(v, lo, hi):
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    return np.arctanh(np.clip((v - mid) / half, -0.999, 0.999))


def _physical(u, max_shift):
    ls = np.log(_SIGMA_RANGE)
    lg = np.log(_GAMMA_RANGE)
    return {
        "dpos": max_shift * jnp.tanh(u["dpos"]),
        "ln_amp": LN_AMP_MIN + jax.nn.softplus(u["ln_amp"] - LN_AMP_MIN),
        "ln_sigma": _bounded(u["ln_sigma"], *ls),
        "ln_gamma": _bounded(u["ln_gamma"], *lg),
        "floor": _FLOOR_MAX * jax.nn.sigmoid(u["floor"]),
    }


def _initial(flux, line_pixel, sigma0, prev=None, max_shift=1.0):
    """Unconstrained starting values (N grid spectra): depths read at the line centres."""
    n, p = flux.shape
    floor0 = 0.05
    depth = 1.0 - np.stack([np.interp(line_pixel, np.arange(p), f) for f in flux])
    tau = -np.log(np.clip(1.0 - depth / (1.0 - floor0), 0.02, 1.0))
    amp = np.maximum(tau * np.sqrt(2 * np.pi) * sigma0, 1e-4)
    u = {
        "dpos": np.zeros((n, line_pixel.size)),
        "ln_amp": np.log(np.expm1(np.log(amp) - LN_AMP_MIN)) + LN_AMP_MIN,
        "ln_sigma": np.broadcast_to(_unbounded(np.log(sigma0), *np.log(_SIGMA_RANGE)), (n, line_pixel.size)),
        "ln_gamma": np.broadcast_to(_unbounded(np.log(0.1 * sigma0), *np.log(_GAMMA_RANGE)), (n, line_pixel.size)),
        "floor": np.full(n, np.log(floor0 / (_FLOOR_MAX - floor0))),
    }
    if prev is not None:  # lines kept from the first pass start where that pass ended
        k = prev["dpos"].shape[1]
        for key in LINE_PARAMS:
            u[key] = np.array(u[key])
            u[key][:, :k] = prev[key]
        u["floor"] = prev["floor"]
    return {k: np.asarray(v, np.float32) for k, v in u.items()}


def _model(line_pixel, groups, n_pix, max_shift):
    def model(u):
        return line_flux(_physical(u, max_shift), line_pixel, groups, n_pix)

    return model


_SMOOTH_WEIGHTS = {"dpos": 1.0, "ln_amp": 0.1, "ln_sigma": 1.0, "ln_gamma": 1.0, "floor": 1.0}


def _joint_program(line_pixel, groups, n_pix, shape, steps, learning_rate, max_shift, smoothness):
    """One jitted Adam segment over all grid spectra at once, with the smoothness penalty.

    The penalty is ``smoothness`` times the mean squared difference of every physical
    parameter between neighbouring grid points along each axis (weights
    ``_SMOOTH_WEIGHTS``): without it, blends split differently at neighbouring points
    (a line's width traded against its neighbour's) and the interpolated parameters
    describe neither.
    """
    import optax

    sched = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(steps // 20, 1), max(steps, 2), 0.02 * learning_rate)
    opt = optax.adam(sched)
    model = jax.vmap(_model(line_pixel, groups, n_pix, max_shift))
    phys = jax.vmap(lambda q: _physical(q, max_shift))

    def parts(u, obs):
        mse = jnp.mean((model(u) - obs) ** 2, axis=1)
        pen = 0.0
        for key, v in phys(u).items():
            v = v.reshape(shape + v.shape[1:])
            for ax in range(len(shape)):
                pen = pen + _SMOOTH_WEIGHTS[key] * jnp.mean(jnp.diff(v, axis=ax) ** 2)
        return mse, pen

    def loss(u, obs):
        mse, pen = parts(u, obs)
        return jnp.mean(mse) + smoothness * pen

    @functools.partial(jax.jit, static_argnums=2)
    def run(u, state, n, obs):
        def step(carry, _):
            u, state = carry
            g = jax.grad(loss)(u, obs)
            upd, state = opt.update(g, state, u)
            return (optax.apply_updates(u, upd), state), None

        (u, state), _ = jax.lax.scan(step, (u, state), None, length=n)
        return u, state

    @jax.jit
    def rms(u, obs):
        return jnp.sqrt(parts(u, obs)[0])

    return opt, run, rms


def _fit_all(flux, u0, line_pixel, hw, shape, steps, learning_rate, max_shift, smoothness, progress, desc):
    groups = window_groups(line_pixel, hw, flux.shape[1])
    opt, run, rms = _joint_program(line_pixel, groups, flux.shape[1], shape, steps, learning_rate, max_shift,
                                   smoothness)
    u = {k: jnp.asarray(v) for k, v in u0.items()}
    obs = jnp.asarray(flux, jnp.float32)
    state = opt.init(u)
    seg = max(1, min(50, steps))
    todo = [seg] * (steps // seg) + ([steps % seg] if steps % seg else [])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=desc, unit="step")
    for n in todo:
        u, state = run(u, state, n, obs)
        if bar is not None:
            jax.block_until_ready(u)  # dispatch is asynchronous: wait, so the bar tells the truth
            bar.update(n)
    if bar is not None:
        bar.close()
    return {k: np.asarray(v) for k, v in u.items()}, np.asarray(rms(u, obs)), groups


def clone_grid(
    grid,
    *,
    label_names=None,
    steps: int = 800,
    learning_rate: float = 0.05,
    min_depth: float = 0.005,
    merge_pixels: float = 0.6,
    max_shift: float = 1.0,
    passes: int = 2,
    smoothness: float = 1e-4,
    progress: bool = False,
):
    """Clone a synthetic grid into a continuous line-list model (:class:`~jaxspec.clone.ClonedModel`).

    Args:
        grid: an HDF5 grid path (the schema of :func:`jaxspec.emulator.train.write_grid`,
            e.g. from :func:`jaxspec.emulator.load_phoenix_grid`) or a tuple
            ``(labels (N, L), flux (N, P), wave (P,))`` or ``(labels, flux, wave,
            label_names)`` of continuum-normalized flux on vacuum wavelengths [A] with
            labels in label units (teff [K], logg and feh [dex]).
        label_names: the L label names for a tuple without them.
        steps: Adam steps of the final pass (the first of two passes runs half as many).
        learning_rate: Adam peak learning rate (warm-up and cosine decay).
        min_depth: smallest line depth (``1 - flux``) detected.
        merge_pixels: detections of different grid spectra closer than this [pixels] are
            one line.
        max_shift: largest centre offset of a line from its starting centre [pixels].
        passes: 1, or 2 to add lines at the first fit's residual minima and refit.
        smoothness: weight of the penalty on parameter differences between neighbouring
            grid points (0 fits every grid spectrum on its own).
        progress: show a tqdm progress bar.

    Returns:
        ``(clone, report)``: the :class:`~jaxspec.clone.ClonedModel` and a
        :class:`CloneReport` (lines, rms per grid spectrum, time).

    Raises:
        ValueError: a grid that is not rectilinear, non-finite flux (the rows named),
            shapes that do not match (flux pixels vs wavelengths, labels vs names),
            unsorted wavelengths, or bad options.
    """
    t0 = time.perf_counter()
    if isinstance(grid, tuple | list):
        if len(grid) == 4:
            labels, flux, wave, names = grid
        elif len(grid) == 3:
            labels, flux, wave = grid
            names = label_names
        else:
            raise ValueError("grid must be a path or (labels, flux, wave[, label_names])")
    else:
        from jaxspec.emulator.train import read_grid

        labels, flux, wave, names = read_grid(grid)
    if names is None:
        raise ValueError("label_names are needed for a grid given as (labels, flux, wave)")
    names = tuple(label_names or names)
    if passes not in (1, 2) or steps < 1 or not learning_rate > 0 or not smoothness >= 0:
        raise ValueError(f"need passes in (1, 2), steps >= 1, learning_rate > 0, smoothness >= 0; got "
                         f"{passes}, {steps}, {learning_rate}, {smoothness}")
    wave = check_wavelengths(wave, "wave", min_size=8)
    flux = np.asarray(flux, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if flux.ndim != 2 or flux.shape[1] != wave.size:
        raise ValueError(f"flux must have shape (N, {wave.size}) to match wave; got {flux.shape}")
    if labels.ndim != 2 or labels.shape[0] != flux.shape[0]:
        raise ValueError(f"labels {labels.shape} and flux {flux.shape} must have one row per spectrum")
    bad = ~np.isfinite(flux).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"grid flux has non-finite pixels in {rows.size} spectra (rows {rows[:5].tolist()}, first "
            f"at labels {dict(zip(names, labels[rows[0]].tolist(), strict=False))})"
        )
    axes, index = check_rectilinear(labels, names)
    shape = tuple(a.size for a in axes)
    order = np.argsort(np.ravel_multi_index(index.T, shape))  # rows in grid (C) order
    flux, wave, resampled = _to_log_lambda(flux[order], wave)
    pixel_kms = float(np.log(wave[-1] / wave[0]) / (wave.size - 1)) * C_KMS

    det = [detect_lines(f, min_depth=min_depth) for f in flux]
    pix, dep = _merge(np.concatenate([d[0] for d in det]), np.concatenate([d[1] for d in det]), merge_pixels)
    if pix.size == 0:
        raise ValueError(f"no lines deeper than min_depth={min_depth} in any grid spectrum")
    n_detected = pix.size
    sigma0 = max(2.0 / pixel_kms, 0.5)  # ~2 km/s, at least half a pixel
    hw = _half_windows(dep, pixel_kms)
    u0 = _initial(flux, pix, sigma0, max_shift=max_shift)
    fit_opts = (shape, learning_rate, max_shift, smoothness, progress)
    # A first pass only has to find where lines are missing: half the steps.
    steps1 = steps if passes == 1 else max(steps // 2, 1)
    u, rms, groups = _fit_all(flux, u0, pix, hw, shape, steps1, *fit_opts[1:], "clone pass 1")
    if passes == 2:
        model = jax.jit(jax.vmap(_model(pix, groups, flux.shape[1], max_shift)))
        resid = flux - np.asarray(model({k: jnp.asarray(v) for k, v in u.items()}))
        extra = [detect_lines(1.0 + r, min_depth=min_depth) for r in resid]
        epix, edep = _merge(np.concatenate([e[0] for e in extra]), np.concatenate([e[1] for e in extra]), merge_pixels)
        far = np.min(np.abs(epix[:, None] - pix[None, :]), axis=1) > merge_pixels if epix.size else epix.astype(bool)
        epix, edep = epix[far], edep[far]
        phys1 = jax.jit(jax.vmap(lambda q: _physical(q, max_shift)))({k: jnp.asarray(v) for k, v in u.items()})
        # Pass 2 refits with the residual lines added and every window sized from pass 1.
        pix = np.concatenate([pix, epix])
        hw = np.concatenate([_fitted_windows({k: np.asarray(v) for k, v in phys1.items()}, pixel_kms),
                             _half_windows(edep, pixel_kms)])
        u1 = _initial(flux, pix, sigma0, prev=u, max_shift=max_shift)
        u, rms, groups = _fit_all(flux, u1, pix, hw, shape, steps, *fit_opts[1:], "clone pass 2")
    phys = {k: np.asarray(v) for k, v in jax.jit(jax.vmap(lambda q: _physical(q, max_shift)))(
        {k: jnp.asarray(v) for k, v in u.items()}).items()}
    params = {k: np.asarray(v, np.float32).reshape(shape + v.shape[1:]) for k, v in phys.items()}
    by_wave = np.argsort(pix, kind="stable")
    params = {k: (v[..., by_wave] if k != "floor" else v) for k, v in params.items()}
    clone = ClonedModel(names, axes, params, wave, pix[by_wave], hw[by_wave])
    rms_rows = np.empty_like(rms)
    rms_rows[order] = rms  # back to the order of the rows given
    report = CloneReport(int(pix.size), int(n_detected), rms_rows, time.perf_counter() - t0, steps, resampled)
    return clone, report


def clone_phoenix(directory, *, wave_min: float, wave_max: float, out=None, **options):
    """Clone a directory of PHOENIX HiRes models (read by :func:`jaxspec.emulator.load_phoenix_grid`).

    Args:
        directory: the folder of PHOENIX model files and their wavelength file.
        wave_min, wave_max: vacuum wavelength range [A] cloned.
        out: optional HDF5 path the clone is saved to (:func:`jaxspec.clone.save_clone`).
        **options: passed to :func:`clone_grid` (steps, min_depth, ...).

    Returns:
        ``(clone, report)`` as :func:`clone_grid`.

    Raises:
        ValueError: what :func:`~jaxspec.emulator.load_phoenix_grid` or :func:`clone_grid` raise.
    """
    from jaxspec.clone.model import save_clone
    from jaxspec.emulator.phoenix import load_phoenix_grid

    grid = load_phoenix_grid(directory, wave_min=wave_min, wave_max=wave_max)
    clone, report = clone_grid(grid, **options)
    if out is not None:
        save_clone(out, clone, report=report.as_dict())
    return clone, report
