"""Two-dimensional cross-correlation (the TODCOR idea) for SB2 starting points.

For a pair of template spectra and every pair of velocities ``(rv_1, rv_2)``
on a grid, the observed line depths ``y = 1 - data`` are fitted as
``y ~ a A(rv_1) + b B(rv_2)`` with ``A = 1 - T_1``, ``B = 1 - T_2`` (the
templates shifted and put on the observed pixels): two linear coefficients
solved in closed form at each grid point, from five precomputed
cross-products (one matrix product for the ``A.B`` term). Because
``(1 - F) = [(1 - T_1) + k (1 - T_2)] / (1 + k)``, ``a = 1 / (1 + k)`` and
``b = k / (1 + k)``, so the flux ratio comes out as ``k = b / a``. The grid
points with the lowest chi-square (non-negative ``a``, ``b``) are the
starts of the local fit.

Data are assumed continuum-normalized to first order (the local fit refines
the continuum).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["TodcorResult", "best_peaks", "todcor", "todcor_cross"]


class TodcorResult(NamedTuple):
    """Output of :func:`todcor` for one template pair: ``(rv, chi2, a, b)``.

    Its fields, in this order, are described below.
    """

    # Fields carry ``#:`` doc comments instead of an Attributes section: autodoc documents a
    # NamedTuple's fields as members, so a section would describe each twice (a Sphinx error).

    #: (n_rv,) velocity grid [km/s].
    rv: jax.Array
    #: (n_rv, n_rv) chi-square over (rv_1 rows, rv_2 columns) with the best a, b at each point.
    chi2: jax.Array
    #: (n_rv, n_rv) weight of template 1, ``a = 1 / (1 + k)`` (k: flux ratio).
    a: jax.Array
    #: (n_rv, n_rv) weight of template 2, ``b = k / (1 + k)``.
    b: jax.Array


def todcor(shifted_1, shifted_2, data, ivar, rv) -> TodcorResult:
    """Chi-square surface over (rv_1, rv_2) for two templates.

    Args:
        shifted_1, shifted_2: (n_rv, P) template fluxes on the observed pixels,
            shifted to each velocity of ``rv`` (already convolved to the
            instrument).
        data, ivar: (P,) observed normalized flux and inverse variance (0 = masked).
        rv: (n_rv,) velocity grid [km/s].

    Returns:
        :class:`TodcorResult`.
    """
    y = 1.0 - data
    a_t = 1.0 - shifted_1
    b_t = 1.0 - shifted_2
    aw = a_t * ivar
    bw = b_t * ivar
    chi2, a, b = todcor_cross(
        jnp.sum(aw * a_t, axis=1), jnp.sum(bw * b_t, axis=1), aw @ y, bw @ y, aw @ b_t.T,
        jnp.sum(ivar * y * y), rv,
    )
    return TodcorResult(rv=jnp.asarray(rv), chi2=chi2, a=a, b=b)


def todcor_cross(aa, bb, ay, by, ab, yy, rv):
    """The TODCOR solution from precomputed cross-products (the core of :func:`todcor`).

    With ``A``, ``B`` the line depths of the two templates at each velocity
    and ``y`` the observed depths (weights ``ivar``): ``aa = A.A``, ``bb = B.B``
    (n_rv,), ``ay = A.y``, ``by = B.y`` (n_rv,), ``ab = A.B^T`` (n_rv, n_rv;
    rv_1 rows, rv_2 columns) and ``yy = y.y``, all weighted. Callers with many
    spectra may approximate ``ab`` by an unweighted product times the mean
    weight (exact for uniform weights), which costs nothing per spectrum.

    ``rv`` (the (n_rv,) velocity grid [km/s]) is not used: the grid is
    implicit in the cross-products; it is kept for a uniform signature.

    Returns:
        ``(chi2, a, b)``, each (n_rv, n_rv); unphysical points (a or b <= 0)
        get at least the single-template chi-square.
    """
    del rv  # the grid is implicit in the inputs; kept for a uniform signature
    det = aa[:, None] * bb[None, :] - ab**2
    det = jnp.where(jnp.abs(det) > 1e-12 * aa[:, None] * bb[None, :], det, jnp.inf)
    a = (ay[:, None] * bb[None, :] - by[None, :] * ab) / det
    b = (by[None, :] * aa[:, None] - ay[:, None] * ab) / det
    chi2 = yy - a * ay[:, None] - b * by[None, :]
    # Unphysical (negative) weights: fall back to the better single-template fit.
    single_1 = yy - ay**2 / jnp.maximum(aa, 1e-30)
    chi2 = jnp.where((a > 0) & (b > 0), chi2, jnp.maximum(single_1[:, None], chi2) + 1e-6 * yy)
    return chi2, a, b


def best_peaks(
    result: TodcorResult, n: int = 3, *, min_separation: float = 10.0, min_rv_difference: float = 0.0
) -> list[dict]:
    """The ``n`` lowest-chi2 points of a TODCOR ``result`` at least ``min_separation`` km/s apart.

    Points with ``|rv_1 - rv_2| < min_rv_difference`` are skipped: there the
    two templates blend into one line profile with a free depth scale, a
    single-star solution that the single-star fit covers.

    Each peak is a dict with ``rv_1``, ``rv_2`` [km/s], ``flux_ratio`` (b / a)
    and ``chi2``; peaks with ``flux_ratio > 1`` have their components swapped
    so that component 1 is the brighter star.
    """
    chi2 = np.asarray(result.chi2)
    rv = np.asarray(result.rv)
    a, b = np.asarray(result.a), np.asarray(result.b)
    order = np.argsort(chi2, axis=None)
    peaks = []
    for flat in order:
        i, j = np.unravel_index(flat, chi2.shape)
        if not (a[i, j] > 0 and b[i, j] > 0) or abs(rv[i] - rv[j]) < min_rv_difference:
            continue
        if any(abs(rv[i] - p["_rv1"]) < min_separation and abs(rv[j] - p["_rv2"]) < min_separation
               for p in peaks):
            continue
        k = b[i, j] / a[i, j]
        peak = {"rv_1": float(rv[i]), "rv_2": float(rv[j]), "flux_ratio": float(k),
                "chi2": float(chi2[i, j]), "swapped": False, "_rv1": rv[i], "_rv2": rv[j]}
        if k > 1.0:
            peak.update(rv_1=float(rv[j]), rv_2=float(rv[i]), flux_ratio=float(1.0 / k), swapped=True)
        peaks.append(peak)
        if len(peaks) == n:
            break
    for p in peaks:
        del p["_rv1"], p["_rv2"]
    return peaks
