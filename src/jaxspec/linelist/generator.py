"""The line-list spectral generator: labels -> normalized spectrum, jitted and sparse.

How lines become a normalized spectrum (an approximate, fast synthesis, not
radiative transfer through a model atmosphere):

1. One homogeneous line-forming layer at ``T = t_frac * teff`` with gas and
   electron pressures from hydrostatic and charge balance
   (:func:`jaxspec.linelist.lte.atmosphere_state`).
2. For each line, the integrated line-to-continuum opacity ratio ``S`` [A]
   from Saha-Boltzmann populations, log gf and the H- / H I continuum
   opacity at the line (:func:`jaxspec.linelist.lte.line_center_strength`),
   and a Thompson-Cox-Hastings pseudo-Voigt profile: Gaussian width from
   thermal + microturbulent motion, Lorentzian width from radiative, Stark and
   van der Waals damping.
3. The ratios of all lines are **summed** at each pixel,
   ``eta(lambda) = sum_l S_l phi_l(lambda)``, and turned into residual flux
   with the Milne-Eddington form ``r = 1 - d_max eta / (1 + eta)``. This is
   the curve of growth: weak lines grow linearly with ``S``, strong lines
   saturate at depth ``d_max`` and then grow through their damping wings.
   Very strong lines form higher in the atmosphere where the source function
   is lower; a second term ``- d_core eta / (eta_core + eta)`` with
   ``eta_core >> 1`` lets only their cores go deeper (``GeneratorParams``).
4. Hydrogen lines get their own profile: a Doppler core and linear-Stark
   (Holtsmark-like) wings ``phi ~ 1 / (1 + |x / w|^{5/2})`` with the
   Holtsmark field ``F0 = 2.61 e n_e^{2/3}`` setting ``w``
   (``w = h_stark_scale * 3 e a0 lambda^2 / (2 h c) (n_u^2 - n_l^2) F0``).
   Their wings reach tens of Angstrom.
5. A Gaussian macroturbulence ``vmacro`` is applied last (off by default).

Sparse evaluation: each line only touches pixels within a window where its
``eta`` exceeds ``window_threshold`` somewhere in the label box (computed once
at construction from the box corners). Lines are grouped by window size; for
each group the pixel grid is cut into blocks, and a static table lists the
lines that can reach each block. The profile of every listed line is then
evaluated densely over its block and summed: no scatter, fixed shapes, and a
cost of about ``n_pix * (lines per block)`` per group.

Global physical parameters (``t_frac``, ``tau_layer``, ``d_max``,
``vdw_scale``, ``vmic``, ``h_stark_scale``) default to values tuned once on the
observed solar spectrum (``scripts/tune_generator.py``) and are pytree leaves,
so they can be differentiated too.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.linelist.atomic import load_atomic_tables
from jaxspec.linelist.blocks import BlockGroup, block_profile_sum, build_block_groups
from jaxspec.linelist.linelist import LineList
from jaxspec.linelist.strength import (
    GeneratorParams,
    atomic_arrays,
    label_dict,
    line_arrays,
    line_parameters,
)
from jaxspec.physics.constants import C_KMS
from jaxspec.physics.grid import log_lambda_grid
from jaxspec.physics.lsf import gaussian_broadening
from jaxspec.physics.voigt import pseudo_voigt_params
from jaxspec.spectral_model import check_labels

__all__ = ["GeneratorParams", "LineListGenerator", "DEFAULT_LABEL_BOUNDS"]

#: Label ranges in which the generator's physics is meant to be used (FGK stars).
DEFAULT_LABEL_BOUNDS = {
    "teff": (3800.0, 8000.0),
    "logg": (0.5, 5.5),
    "feh": (-3.0, 1.0),
    "alpha_fe": (-0.4, 0.8),
    "vmic": (0.0, 4.0),
}
_HOLTSMARK_NORM = 2.0 * (np.pi / 2.5) / np.sin(np.pi / 2.5)  # int dx / (1 + |x|^2.5)


class LineListGenerator:
    """Spectral model from a line list: ``flux(labels)`` -> normalized spectrum.

    Args:
        linelist: a :class:`~jaxspec.LineList`; ``None`` means the built-in
            calibrated list (:func:`jaxspec.builtin_linelist`).
        wave_min, wave_max: vacuum wavelength range of the model grid [A].
        pixel_kms: model-grid step [km/s], uniform in ln(lambda). Default
            1.0 km/s (sampling resolving power c / 1 km/s ~ 300,000), fine
            enough to resolve thermal line widths of iron-peak lines in FGK
            stars and to be convolved to any instrument at fit time.
        label_names: labels of ``flux``; ``("teff", "logg", "feh")`` by default;
            ``"alpha_fe"`` and ``"vmic"`` may be added.
        params: :class:`GeneratorParams` (global physics knobs).
        label_bounds: optional dict overriding :data:`DEFAULT_LABEL_BOUNDS`.
        window_threshold: a line is evaluated where its opacity ratio may
            exceed this (checked over the label box); smaller is more exact and
            slower. The truncation error in flux is below about
            ``d_max * window_threshold`` per line.
        max_window_kms: cap on a line's half window [km/s] (hydrogen wings).

    Raises:
        ValueError: bad wavelengths, a range the line list does not cover,
            unknown or duplicate label names, or empty label bounds.

    Lines of species without a partition function or a solar abundance (for
    example Tc I) are left out; ``line_index`` lists the lines that are used.

    The grid and the label box are the properties :attr:`wave` ((n_pix,)
    vacuum wavelengths [A]) and :attr:`label_bounds`.

    Attributes:
        label_names: see :class:`jaxspec.spectral_model.SpectralModel`.
        params: the :class:`GeneratorParams` in use.
        pixel_kms: the grid step [km/s].
        linelist: the lines used (those that can reach the grid, with atomic
            data), sorted by wavelength.
        line_index: their indices into the ``linelist`` argument.
    """

    def __init__(
        self,
        linelist: LineList | None = None,
        wave_min: float = 4950.0,
        wave_max: float = 5350.0,
        *,
        pixel_kms: float = 1.0,
        label_names=("teff", "logg", "feh"),
        params: GeneratorParams | None = None,
        label_bounds: dict | None = None,
        window_threshold: float = 1.5e-4,
        max_window_kms: float = 3000.0,
    ):
        if linelist is None:
            from jaxspec.linelist.builtin import builtin_linelist

            linelist = builtin_linelist()
        if not isinstance(linelist, LineList):
            raise ValueError(f"linelist must be a jaxspec.LineList, got {type(linelist).__name__}")
        linelist.validate()
        for name, v in (("wave_min", wave_min), ("wave_max", wave_max)):
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive finite wavelength [A], got {v}")
        if wave_max <= wave_min:
            raise ValueError(f"wave_max ({wave_max}) must exceed wave_min ({wave_min})")
        label_names = tuple(label_names)
        bounds = dict(DEFAULT_LABEL_BOUNDS, **(label_bounds or {}))
        for req in ("teff", "logg", "feh"):
            if req not in label_names:
                raise ValueError(f"label_names must include {req!r}; got {label_names}")
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"label_names has duplicates: {label_names}")
        for name, (lo, hi) in bounds.items():
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"label_bounds[{name!r}] must be finite with lo < hi; got ({lo}, {hi})")
        unknown = [n for n in label_names if n not in DEFAULT_LABEL_BOUNDS]
        if unknown:
            raise ValueError(
                f"unknown labels {unknown}; the generator knows {sorted(DEFAULT_LABEL_BOUNDS)}"
            )
        self.label_names = label_names
        self._bounds = np.array([bounds[n] for n in label_names], dtype=np.float64)
        self.params = params if params is not None else GeneratorParams()
        self.pixel_kms = float(pixel_kms)
        self.window_threshold = float(window_threshold)

        wave = log_lambda_grid(wave_min, wave_max, pixel_kms=pixel_kms)
        self._wave = wave
        self._dlnlam = pixel_kms / C_KMS
        lw = np.asarray(linelist.wave)
        if len(linelist) and (wave[0] < lw.min() - 5.0 or wave[-1] > lw.max() + 5.0):
            raise ValueError(
                f"requested wavelengths {wave[0]:.1f}-{wave[-1]:.1f} A lie outside the line "
                f"list's coverage {lw.min():.1f}-{lw.max():.1f} A"
            )
        tables = load_atomic_tables()
        # Candidates: lines whose window could reach the grid (windows are capped
        # at max_window_kms); those that cannot reach it are dropped below.
        reach = lw * max_window_kms / C_KMS
        keep = (lw > wave[0] - reach) & (lw < wave[-1] + reach)
        z_all, ion_all = np.asarray(linelist.z), np.asarray(linelist.ion)
        keep &= tables.partition_known[z_all - 1, ion_all] & np.isfinite(
            tables.solar_abundance[z_all - 1]
        )
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(lw[idx], kind="stable")]
        self._atomic = atomic_arrays(tables)
        self._set_lines(linelist.select(idx), idx, tables)
        hw = self._half_windows(max_window_kms)
        reaches = (self._pos_np + hw >= 0) & (self._pos_np - hw <= wave.size - 1)
        if not np.all(reaches):
            self._set_lines(self.linelist.select(reaches), idx[reaches], tables)
            hw = hw[reaches]
            self.max_log_strength = self.max_log_strength[reaches]
        self._half_window = hw
        self._groups = self._build_groups(hw)

    def _set_lines(self, ll: LineList, idx: np.ndarray, tables) -> None:
        #: Indices of the lines used, into the ``linelist`` given (sorted by wavelength).
        self.line_index = idx
        self.linelist = ll
        self._lines = self._line_arrays(ll, tables)

    # ------------------------------------------------------------------ setup

    def _line_arrays(self, ll: LineList, tables) -> dict:
        lines = line_arrays(ll, tables)
        # Position of each line on the model grid [pixels], computed in float64.
        pos = np.log(np.asarray(ll.wave) / self._wave[0]) / self._dlnlam
        # Integer and fractional parts kept apart for float32 precision.
        self._pos_int = np.floor(pos).astype(np.int64)
        lines["pos_frac"] = jnp.asarray(pos - self._pos_int, dtype=lines["wave"].dtype)
        self._hydrogen_np = np.asarray(ll.z) == 1
        self._pos_np = pos
        return lines

    def _box_corners(self) -> np.ndarray:
        return np.array(list(itertools.product(*[tuple(b) for b in self._bounds])))

    def _half_windows(self, max_window_kms: float) -> np.ndarray:
        """Half window [pixels] of every line: where its eta can exceed the threshold in the box."""
        n = len(self.linelist)
        if n == 0:
            self.max_log_strength = np.zeros(0)
            return np.zeros(0)
        dtype = self._lines["wave"].dtype
        corners = jnp.asarray(self._box_corners(), dtype=dtype)
        zero = jnp.zeros(n, dtype=dtype)
        strength, sig, gam = jax.jit(jax.vmap(lambda lab: self._line_params(lab, zero)))(corners)
        self._corner_strength = np.asarray(strength)
        strength, sig, gam = (np.asarray(a, dtype=np.float64) for a in (strength, sig, gam))
        thr = self.window_threshold
        with np.errstate(divide="ignore", invalid="ignore"):
            peak_g = strength / (np.sqrt(2 * np.pi) * sig)
            hw_g = sig * np.sqrt(2.0 * np.log(np.maximum(peak_g / thr, 1.0)))
            hw_l = np.sqrt(strength * gam / (np.pi * thr))
            # Hydrogen: Holtsmark-like wings, eta = S/(N w) (w/x)^2.5.
            hw_h = gam * np.power(np.maximum(strength / (_HOLTSMARK_NORM * gam * thr), 1.0), 0.4)
        hw = np.where(self._hydrogen_np[None, :], np.maximum(hw_h, hw_g), np.maximum(hw_g, hw_l))
        hw = np.nanmax(np.nan_to_num(hw, nan=0.0), axis=0)
        # log10 of the largest central opacity ratio (Doppler core) over the box.
        self.max_log_strength = np.log10(np.max(peak_g, axis=0))
        return np.clip(np.ceil(hw + 1.0), 2.0, max_window_kms / self.pixel_kms)

    def _build_groups(self, hw: np.ndarray) -> list[BlockGroup]:
        return build_block_groups(self._pos_np, self._pos_int, self._hydrogen_np, hw, self._wave.size)

    # ---------------------------------------------------------------- physics

    @property
    def wave(self) -> np.ndarray:
        """(n_pix,) vacuum wavelengths [A], uniform in ln(lambda), float64."""
        return self._wave

    @property
    def label_bounds(self) -> np.ndarray:
        """(n_labels, 2) lower and upper bounds of the labels, in ``label_names`` order and label units."""
        return self._bounds

    @property
    def n_lines(self) -> int:
        """Number of lines evaluated (those of :attr:`linelist`: they reach the grid and have atomic data)."""
        return len(self.linelist)

    def _line_params(self, labels, loggf_offset, params: GeneratorParams | None = None):
        """Per-line integrated strength, Gaussian sigma and Lorentz/Stark HWHM, all in pixels."""
        p = self.params if params is None else params
        lab = label_dict(labels, self.label_names, p)
        s, sigma, gamma = line_parameters(self._lines, self._atomic, lab, p, loggf_offset)
        dpix = self._lines["wave"] * self._dlnlam  # [A per pixel]
        return s / dpix, sigma / self.pixel_kms, gamma / self.pixel_kms

    def _eta(self, strength, sigma, gamma, n_pix: int | None = None):
        """Summed line-to-continuum opacity ratio on the grid, (n_pix,) (``n_pix`` for block
        tables laid out on another pixel axis than :attr:`wave`'s)."""
        n_pix = self._wave.size if n_pix is None else int(n_pix)
        # Per-line profile coefficients, computed once (not per pixel):
        # eta_l(x) = a_g exp(-c_g x^2) + a_l / (x^2 + c_l)   (TCH pseudo-Voigt).
        hw, mix = pseudo_voigt_params(sigma, gamma)
        ln2 = np.log(2.0)
        a_g = strength * (1.0 - mix) * np.sqrt(ln2 / np.pi) / hw
        c_g = ln2 / hw**2
        a_l = strength * mix * hw / np.pi
        c_l = hw**2
        # Hydrogen: Holtsmark-like wings a_h / (1 + (x^2 / hw^2)^(5/4)).
        h_hw, h_mix = _hydrogen_params(sigma, gamma)
        a_h = strength * h_mix / (_HOLTSMARK_NORM * h_hw)
        a_hg = strength * (1.0 - h_mix) * np.sqrt(ln2 / np.pi) / h_hw
        c_hg = ln2 / h_hw**2
        c_h = 1.0 / h_hw**2

        def pad(a, v):  # one dummy line at the end, index n_lines, contributing 0
            return jnp.concatenate([a, jnp.full((1,), v, a.dtype)])

        frac = pad(self._lines["pos_frac"], 0.0)
        coef = [pad(c, v) for c, v in ((a_g, 0.0), (c_g, 1.0), (a_l, 0.0), (c_l, 1.0))]
        hcoef = [pad(c, v) for c, v in ((a_hg, 0.0), (c_hg, 1.0), (a_h, 0.0), (c_h, 1.0))]
        return block_profile_sum(self._groups, frac, coef, hcoef, n_pix)

    def _flux(self, labels, loggf_offset, params: GeneratorParams | None = None):
        p = self.params if params is None else params
        strength, sigma, gamma = self._line_params(labels, loggf_offset, p)
        return self._flux_from_eta(self._eta(strength, sigma, gamma), p)

    def _flux_from_eta(self, eta, p: GeneratorParams):
        """Residual flux of one contiguous stretch of grid from its opacity ratio ``eta``."""
        d_core = p.core_frac * (1.0 - p.d_max)
        flux = 1.0 - p.d_max * eta / (1.0 + eta) - d_core * eta / (10.0**p.log_eta_core + eta)
        if not _is_zero(p.vmacro):
            flux = gaussian_broadening(flux, p.vmacro, self._dlnlam, sigma_max_kms=20.0)
        return flux

    def flux(self, labels):
        """Normalized flux for one label vector.

        Args:
            labels: (n_labels,) in the order of ``label_names`` (teff [K],
                logg [dex], feh [dex], ...). Labels are not clipped; outside
                ``label_bounds`` the physics is extrapolated.

        Returns:
            (n_pix,) continuum-normalized flux on ``wave``.

        Raises:
            ValueError: wrong number of labels.
        """
        check_labels(labels, self.label_names)
        labels = jnp.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"flux takes one label vector of shape ({len(self.label_names)},); "
                             f"use flux_batch for shape {labels.shape}")
        return self._flux(labels, jnp.zeros(self.n_lines, labels.dtype))

    def flux_batch(self, labels, *, batch_size: int = 8):
        """Normalized flux (n_spec, n_pix) for a batch of label vectors (n_spec, n_labels).

        Spectra are evaluated ``batch_size`` at a time (``jax.lax.map``): on a
        CPU a wider ``vmap`` only adds memory traffic, while the per-spectrum
        work is already vectorized over lines and pixels. Memory stays bounded
        by ``batch_size`` spectra of intermediate profiles.

        Args:
            labels: (n_spec, n_labels) in the order of ``label_names`` (teff
                [K], logg [dex], feh [dex], ...); not clipped.
            batch_size: spectra per ``jax.lax.map`` step (default 8).

        Returns:
            (n_spec, n_pix) continuum-normalized flux on ``wave``.

        Raises:
            ValueError: wrong number of labels, or labels not 2-D.
        """
        check_labels(labels, self.label_names)
        labels = jnp.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"flux_batch takes labels of shape (n_spec, {len(self.label_names)}); "
                             f"got {labels.shape}")
        return jax.lax.map(self.flux, labels, batch_size=batch_size)

    def __repr__(self) -> str:
        return (
            f"LineListGenerator({self.n_lines} lines, {self._wave[0]:.1f}-{self._wave[-1]:.1f} A, "
            f"{self._wave.size} pixels of {self.pixel_kms:g} km/s, labels={self.label_names})"
        )


def _is_zero(v) -> bool:
    try:
        return float(v) == 0.0
    except (TypeError, jax.errors.ConcretizationTypeError):
        return False


def _hydrogen_params(sigma, w):
    """Half width and wing fraction of the hydrogen profile.

    A Doppler core mixed with Holtsmark-like wings ``1 / (N hw (1 + |x/hw|^{5/2}))``,
    mixed like the TCH pseudo-Voigt with the Lorentzian replaced by that
    function (``w``: Stark half width).
    """
    return pseudo_voigt_params(sigma, w)
