"""Astrophysical log gf calibration of a line list against an observed spectrum.

Lines with imperfect laboratory or theoretical log gf, and the approximations
of the single-layer model, leave per-line strength errors. Following common
practice ("astrophysical log gf"), :func:`calibrate_loggf` fits one bounded
log gf offset per line so that the generator reproduces an observed reference
spectrum at its known labels:

    minimize  sum_pix ivar (model - observed)^2 / n_pix
              + ridge * sum_lines (offset / bound)^2
    offset = bound * tanh(u),

jointly with a velocity shift, by L-BFGS (optax) in JAX. The tanh bound
keeps offsets inside +-``bound`` dex without sticking at the edge; the ridge
term pulls offsets that the data do not constrain back to zero (calibration
partly patches profile shape, so offsets should stay small). Only lines
whose centre lies inside the fitted wavelength window and that are visible
at the reference labels get an offset; all others keep zero, so the
calibration cannot change lines it did not see.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.linelist.generator import LineListGenerator
from jaxspec.physics.grid import check_wavelengths, make_resampler
from jaxspec.physics.observe import observe

__all__ = ["CalibrationResult", "calibrate_loggf", "fit_velocity"]


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
    """Result of :func:`calibrate_loggf`.

    Attributes:
        offsets: (n_lines,) log gf offsets [dex] for ``generator.linelist`` (0 for
            lines that were not fitted).
        fitted: (n_lines,) bool, which lines were fitted.
        rv: fitted velocity shift [km/s].
        rms_before, rms_after: rms of (model - observed) over the fitted pixels.
        n_steps: optimizer steps taken.
    """

    offsets: np.ndarray
    fitted: np.ndarray
    rv: float
    rms_before: float
    rms_after: float
    n_steps: int


def _prepare(generator, wave_obs, flux_obs, ivar):
    wave_obs = np.asarray(wave_obs, dtype=np.float64)
    check_wavelengths(wave_obs, "wave_obs")
    flux_obs = np.asarray(flux_obs, dtype=np.float64)
    if flux_obs.shape != wave_obs.shape:
        raise ValueError(f"flux_obs has shape {flux_obs.shape}, wave_obs {wave_obs.shape}")
    ivar = np.ones_like(flux_obs) if ivar is None else np.asarray(ivar, dtype=np.float64)
    if ivar.shape != wave_obs.shape:
        raise ValueError(f"ivar has shape {ivar.shape}, wave_obs {wave_obs.shape}")
    bad = ~np.isfinite(flux_obs) | ~np.isfinite(ivar)
    ivar = np.where(bad, 0.0, ivar)
    flux_obs = np.where(bad, 1.0, flux_obs)
    if not np.any(ivar > 0):
        raise ValueError("all pixels are masked (ivar = 0 or non-finite flux)")
    resampler = make_resampler(generator.wave, wave_obs)
    dtype = jnp.result_type(float)
    return resampler, jnp.asarray(flux_obs, dtype), jnp.asarray(ivar, dtype)


def fit_velocity(
    model_flux,
    generator: LineListGenerator,
    wave_obs,
    flux_obs,
    *,
    ivar=None,
    vsini=None,
    resolution=None,
    rv_range=(-5.0, 5.0),
    rv_step=0.05,
):
    """Best velocity shift of a fixed model spectrum against an observed one.

    A chi-square scan over ``rv_range`` with ``rv_step`` [km/s], refined by a
    parabola through the three best points.

    Args:
        model_flux: (n_model,) rest-frame normalized model flux on ``generator.wave``.
        generator: the :class:`~jaxspec.LineListGenerator` whose grid ``model_flux`` is on.
        wave_obs, flux_obs, ivar: (n_obs,) observed vacuum wavelengths [A],
            normalized flux and inverse variance (None = uniform).
        vsini: projected rotation [km/s] applied to the model (None: none).
        resolution: instrument resolving power lambda / FWHM applied to the
            model (None: no LSF).
        rv_range: ``(low, high)`` scanned velocities [km/s] (default +-5).
        rv_step: scan step [km/s] (default 0.05).

    Returns:
        (rv [km/s], chi2 at rv).
    """
    resampler, fobs, iv = _prepare(generator, wave_obs, flux_obs, ivar)
    dl = generator._dlnlam

    @jax.jit
    def chi2(rv):
        m = observe(model_flux, dl, resampler, rv=rv, vsini=vsini, resolution=resolution)
        return jnp.sum(iv * (m - fobs) ** 2)

    grid = np.arange(rv_range[0], rv_range[1] + 0.5 * rv_step, rv_step)
    c = np.array(jax.vmap(chi2)(jnp.asarray(grid, jnp.result_type(float))))
    i = int(np.clip(np.argmin(c), 1, len(grid) - 2))
    y0, y1, y2 = c[i - 1], c[i], c[i + 1]
    denom = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / denom if denom > 0 else 0.0
    rv = float(grid[i] + np.clip(shift, -1, 1) * rv_step)
    return rv, float(chi2(jnp.asarray(rv, jnp.result_type(float))))


def calibrate_loggf(
    generator: LineListGenerator,
    labels,
    wave_obs,
    flux_obs,
    *,
    ivar=None,
    vsini=None,
    resolution=None,
    rv=0.0,
    fit_window=None,
    bound: float = 1.0,
    ridge: float = 1e-5,
    min_strength: float = 1e-3,
    steps: int = 300,
) -> CalibrationResult:
    """Fit bounded per-line log gf offsets so the generator matches an observed spectrum.

    Args:
        generator: the line-list generator (its list is the one calibrated).
        labels: (n_labels,) known labels of the reference star.
        wave_obs: (n_obs,) vacuum wavelengths [A] of the observed spectrum,
            inside the generator's grid.
        flux_obs: (n_obs,) observed normalized flux.
        ivar: (n_obs,) inverse variance; None = uniform weights. Non-finite
            pixels are masked.
        vsini, resolution: rotation [km/s] and resolving power applied to the model.
        rv: starting velocity shift [km/s] (fitted jointly).
        fit_window: (lo, hi) [A]; only pixels and line centres inside it are
            used. Default: the whole observed range.
        bound: offsets are limited to +-bound [dex].
        ridge: weight of the penalty sum (offset / bound)^2.
        min_strength: lines whose central opacity ratio at ``labels`` is below
            this are not fitted (they cannot be constrained).
        steps: L-BFGS iterations.

    Returns:
        :class:`CalibrationResult`.

    Raises:
        ValueError: shape mismatch, unsorted or non-finite wavelengths, all
            pixels masked, wavelengths outside the model grid.
    """
    wave_obs = np.asarray(wave_obs, dtype=np.float64)
    if fit_window is not None:
        lo, hi = fit_window
        sel = (wave_obs >= lo) & (wave_obs <= hi)
        if not sel.any():
            raise ValueError(f"fit_window {fit_window} contains no observed pixel")
        wave_obs = wave_obs[sel]
        flux_obs = np.asarray(flux_obs)[sel]
        ivar = None if ivar is None else np.asarray(ivar)[sel]
    resampler, fobs, iv = _prepare(generator, wave_obs, flux_obs, ivar)
    dtype = jnp.result_type(float)  # float32, or float64 under JAX_ENABLE_X64
    labels = jnp.asarray(labels, dtype)
    n = generator.n_lines
    zero = jnp.zeros(n, dtype)
    strength, sigma, _ = generator._line_params(labels, zero)
    peak = np.asarray(strength / (np.sqrt(2 * np.pi) * sigma))
    lw = np.asarray(generator.linelist.wave)
    fitted = (peak >= min_strength) & (lw >= wave_obs[0]) & (lw <= wave_obs[-1])
    mask = jnp.asarray(fitted, dtype)
    dl = generator._dlnlam
    norm = float(jnp.sum(iv > 0))

    def model(offsets, v):
        f = generator._flux(labels, offsets)
        return observe(f, dl, resampler, rv=v, vsini=vsini, resolution=resolution)

    def loss(params):
        u, v = params
        offsets = bound * jnp.tanh(u) * mask
        resid = model(offsets, v) - fobs
        return jnp.sum(iv * resid**2) / norm + ridge * jnp.sum((offsets / bound) ** 2)

    import optax  # imported here: only calibration needs it

    params = (zero, jnp.asarray(rv, dtype))
    opt = optax.lbfgs()
    state = opt.init(params)
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(params, updates), state, value

    rms = lambda off, v: float(  # noqa: E731
        jnp.sqrt(jnp.sum(iv * (model(off, v) - fobs) ** 2) / jnp.sum(iv))
    )
    rms_before = rms(zero, jnp.asarray(rv, dtype))
    for _ in range(steps):
        params, state, _ = step(params, state)
    u, v = params
    offsets = np.asarray(bound * jnp.tanh(u) * mask, dtype=np.float64)
    if not np.all(np.isfinite(offsets)) or not np.isfinite(float(v)):
        raise FloatingPointError("log gf calibration diverged (non-finite offsets)")
    return CalibrationResult(
        offsets=offsets,
        fitted=fitted,
        rv=float(v),
        rms_before=rms_before,
        rms_after=rms(jnp.asarray(offsets, dtype), v),
        n_steps=steps,
    )
