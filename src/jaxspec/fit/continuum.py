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

The degree is a number for every segment, one number per segment, or chosen from the
data (``"auto"``): :func:`choose_degrees` compares degrees 0..``AUTO_MAX_DEGREE`` in each
segment by the Bayesian information criterion, ``chi2 + (degree + 1) ln n_pixels``,
against a model spectrum, so a continuum-normalized spectrum keeps a low degree and raw
counts with an echelle blaze get the degree they need.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.physics.grid import check_wavelengths

__all__ = ["AUTO_MAX_DEGREE", "choose_degrees", "continuum_design", "continuum_layout", "find_segments",
           "projected_residual", "solve_continuum"]

#: Highest Chebyshev degree per segment that ``continuum_degree="auto"`` considers: a blaze of
#: degree 4 times a slope, as raw echelle orders and fibre spectra have, needs 5.
AUTO_MAX_DEGREE = 6


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


def _segment_degrees(degree, n_segments: int) -> np.ndarray:
    deg = np.atleast_1d(np.asarray(degree))
    if deg.dtype.kind not in "iu" and not (deg.dtype.kind == "f" and np.all(deg == np.round(deg))):
        raise ValueError(f"continuum degree must be an integer or one integer per segment, got {degree!r}")
    deg = deg.astype(np.int64)
    if deg.ndim != 1 or deg.size not in (1, n_segments):
        raise ValueError(f"continuum degree has {deg.size} values for {n_segments} segments: give one "
                         "number, or one per segment")
    if np.any(deg < 0):
        raise ValueError(f"continuum degree must be >= 0, got {degree!r}")
    return np.broadcast_to(deg, (n_segments,)).copy()


def continuum_layout(wave, degree=2, segments=None):
    """Which segment and degree each column of :func:`continuum_design` belongs to.

    Args:
        wave, degree, segments: as :func:`continuum_design`.

    Returns:
        ``(pixel_segment (P,), column_segment (K,), column_degree (K,), degrees (S,))``:
        the segment (0..S-1, in wavelength order) of every pixel and every column, each
        column's Chebyshev order, and the degree of every segment.
    """
    wave = check_wavelengths(wave, "wave", min_size=2)
    seg = find_segments(wave) if segments is None else np.asarray(segments)
    if seg.shape != wave.shape:
        raise ValueError(f"segments has shape {seg.shape}, wave {wave.shape}")
    ids, pix = np.unique(seg, return_inverse=True)
    deg = _segment_degrees(degree, ids.size)
    col_seg = np.concatenate([np.full(d + 1, k) for k, d in enumerate(deg)])
    col_deg = np.concatenate([np.arange(d + 1) for d in deg])
    return pix.astype(np.int32), col_seg.astype(np.int32), col_deg.astype(np.int32), deg


def continuum_design(wave, degree=2, segments=None) -> np.ndarray:
    """Block design matrix of per-segment Chebyshev polynomials.

    Args:
        wave: (P,) increasing wavelengths [A].
        degree: polynomial degree in each segment (0 = a constant scale): one number, or a
            sequence of one number per segment.
        segments: (P,) segment index per pixel; default :func:`find_segments`.

    Returns:
        (P, K) float64 with ``K = sum(degree_s + 1)``: segment ``s``'s columns are
        ``T_j(x)``, j = 0..degree_s (x mapped to [-1, 1] across the segment), and 0 on
        other segments' pixels; the column order is segment by segment
        (:func:`continuum_layout`).
    """
    wave = check_wavelengths(wave, "wave", min_size=2)
    pix, col_seg, col_deg, deg = continuum_layout(wave, degree, segments)
    out = np.zeros((wave.size, col_seg.size))
    for k, d in enumerate(deg):
        sel = pix == k
        w = wave[sel]
        x = (2.0 * (w - w[0]) / (w[-1] - w[0]) - 1.0) if w.size > 1 else np.zeros(1)
        out[np.ix_(sel, col_seg == k)] = np.polynomial.chebyshev.chebvander(x, d)
    return out


def choose_degrees(model, data, ivar, design, pixel_segment, column_segment, column_degree, n_segments: int):
    """Continuum degree of every segment by the BIC, for a model spectrum (jittable).

    For each degree ``g`` = 0..max(column_degree) the continuum is solved with the columns of
    order <= g (in every segment at once: the segments' columns are separate blocks, so each
    segment's chi2 is its own); segment ``s`` takes the degree that minimizes
    ``chi2_s(g) + (g + 1) ln n_s``, with n_s its usable pixels. The model should describe the
    lines (a template matched to the data, a fit): a polynomial alone would chase them.

    Args:
        model: (P,) model flux (normalized); data, ivar: (P,) observed flux and inverse variance.
        design: (P, K) from :func:`continuum_design` at the highest degree considered.
        pixel_segment, column_segment, column_degree: from :func:`continuum_layout`.
        n_segments: S.

    Returns:
        ``(degrees (S,) int32, column_mask (K,) bool)``: the chosen degree per segment and the
        design columns it keeps (``design * column_mask`` is the chosen design).
    """
    col_deg = jnp.asarray(column_degree)
    col_seg = jnp.asarray(column_segment)
    onehot = jax.nn.one_hot(jnp.asarray(pixel_segment), n_segments, dtype=model.dtype)  # (P, S)
    max_deg = int(np.max(column_degree))

    def chi2_at(g):
        cont, _ = solve_continuum(model, data, ivar, design * (col_deg <= g))
        return (ivar * (model * cont - data) ** 2) @ onehot

    gs = jnp.arange(max_deg + 1)
    chi = jax.lax.map(chi2_at, gs)  # (G, S)
    n_s = (ivar > 0).astype(model.dtype) @ onehot
    bic = chi + (gs[:, None] + 1.0) * jnp.log(jnp.maximum(n_s, 1.0))[None, :]
    deg = jnp.argmin(bic, axis=0).astype(jnp.int32)
    return deg, col_deg <= deg[col_seg]


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
