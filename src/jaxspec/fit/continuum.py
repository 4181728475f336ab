"""Multiplicative continuum by variable projection.

The observed flux is modelled as ``d ~ m(theta) * c(lambda)``, with ``c`` a
Chebyshev polynomial of degree ``degree`` in each wavelength segment
(detector chip, echelle order). For a given model ``m`` the best
coefficients follow from weighted linear least squares, so the nonlinear
fitter only sees ``theta`` ("variable projection"): fewer parameters, no
continuum starting guesses, and the solve is differentiable, so the Jacobian
includes how the continuum responds to ``theta``.

Segments are found from gaps in ``wave`` (a step in ln(lambda) larger than
``gap_factor`` times the median step) or given explicitly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.physics.grid import check_wavelengths

__all__ = ["continuum_design", "find_segments", "projected_residual", "solve_continuum"]


def find_segments(wave, *, gap_factor: float = 10.0) -> np.ndarray:
    """Segment index (0, 1, ...) of every pixel, split where ln(lambda) jumps.

    Args:
        wave: (P,) increasing wavelengths [A].
        gap_factor: a step larger than this times the median step starts a new segment.

    Returns:
        (P,) int array.
    """
    wave = check_wavelengths(wave, "wave", min_size=2)
    d = np.diff(np.log(wave))
    return np.concatenate([[0], np.cumsum(d > gap_factor * np.median(d))]).astype(np.int32)


def continuum_design(wave, degree: int = 2, segments=None) -> np.ndarray:
    """Block design matrix of per-segment Chebyshev polynomials.

    Args:
        wave: (P,) increasing wavelengths [A].
        degree: polynomial degree in each segment (0 = a constant scale).
        segments: (P,) segment index per pixel; default :func:`find_segments`.

    Returns:
        (P, n_segments * (degree + 1)) float64: column ``s * (degree + 1) + j``
        is ``T_j(x)`` on segment ``s`` (x mapped to [-1, 1] across the
        segment) and 0 elsewhere.
    """
    wave = check_wavelengths(wave, "wave", min_size=2)
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    seg = find_segments(wave) if segments is None else np.asarray(segments)
    if seg.shape != wave.shape:
        raise ValueError(f"segments has shape {seg.shape}, wave {wave.shape}")
    ids = np.unique(seg)
    out = np.zeros((wave.size, ids.size * (degree + 1)))
    for k, s in enumerate(ids):
        sel = seg == s
        w = wave[sel]
        x = (2.0 * (w - w[0]) / (w[-1] - w[0]) - 1.0) if w.size > 1 else np.zeros(1)
        out[sel, k * (degree + 1) : (k + 1) * (degree + 1)] = np.polynomial.chebyshev.chebvander(x, degree)
    return out


def solve_continuum(model, data, ivar, design, *, ridge: float = 1e-6):
    """Best multiplicative continuum for a model spectrum (weighted linear least squares).

    Minimizes ``sum ivar (model * (design @ c) - data)^2 + ridge * |c - c0|^2``
    where ``c0`` is the unit continuum (1 in each segment's constant term), so
    a segment without valid pixels keeps a flat continuum of 1 instead of a
    singular solve.

    Args:
        model: (P,) model flux; data, ivar: (P,) observed flux and inverse
            variance (0 = masked); design: (P, K) from :func:`continuum_design`.
        ridge: small Tikhonov weight (relative to the weights' scale).

    Returns:
        ``(continuum (P,), coefficients (K,))``.
    """
    coef, _ = _solve(model, data, ivar, design, ridge)
    return design @ coef, coef


def _solve(model, data, ivar, design, ridge):
    """Coefficients and the regularized normal matrix ``M = A^T W A + rho I`` (A = diag(model) D)."""
    design = jnp.asarray(design, dtype=jnp.result_type(model))
    bw = (model * ivar)[:, None] * design
    ata = (model[:, None] * design).T @ bw
    # The ridge's scale is a constant as far as derivatives go (stop_gradient), so that
    # projected_residual's closed-form Jacobian is the exact derivative of this solve.
    scale = jax.lax.stop_gradient(jnp.maximum(jnp.trace(ata) / ata.shape[0], 1e-30))
    # Unit continuum: the constant Chebyshev term of every segment is 1.
    c0 = (jnp.sum(design, axis=0) > 0) * _constant_terms(design)
    lhs = ata + ridge * scale * jnp.eye(ata.shape[0], dtype=ata.dtype)
    rhs = bw.T @ data + ridge * scale * c0
    return jnp.linalg.solve(lhs, rhs), lhs


def projected_residual(model, dmodel, data, ivar, design, *, ridge: float = 1e-6):
    """Weighted residual after the continuum solve, and its exact Jacobian (variable projection).

    The residual is ``r = sqrt(ivar) * (model * c - data)`` with ``c`` the continuum of
    :func:`solve_continuum` for this model. Given the model's derivatives ``dmodel`` with
    respect to ``n`` parameters, the derivative of ``r`` (the continuum re-solved, as in
    Golub & Pereyra 1973) follows in closed form: with ``A = diag(sqrt(ivar) model) D``,
    ``u_k = sqrt(ivar) c dmodel_k`` and ``M = A^T A + rho I``,

        dr_k = u_k - A M^-1 (A^T u_k + D^T (sqrt(ivar) dmodel_k r)).

    Three (n, P) x (P, K) products instead of differentiating the solve per tangent.

    Args:
        model: (P,) model flux; dmodel: (n, P) its derivatives.
        data, ivar: (P,) observed flux and inverse variance; design: (P, K).

    Returns:
        ``(r (P,), dr (n, P))``; ``dr`` agrees with ``jax.jvp`` of the residual.
    """
    design = jnp.asarray(design, dtype=jnp.result_type(model))
    coef, lhs = _solve(model, data, ivar, design, ridge)
    cont = design @ coef
    s = jnp.sqrt(ivar)
    r = s * (model * cont - data)
    u = dmodel * (s * cont)
    g = (dmodel * (s * r) + u * (s * model)) @ design  # (n, K)
    dcoef = jnp.linalg.solve(lhs, g.T).T
    return r, u - (dcoef @ design.T) * (s * model)


def _constant_terms(design):
    # A column is a constant term when it is 1 on every pixel where it is non-zero.
    nz = design != 0
    return jnp.all(jnp.where(nz, design == 1.0, True), axis=0) & jnp.any(nz, axis=0)
