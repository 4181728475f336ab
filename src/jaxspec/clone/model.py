"""The cloned spectral model: pseudo-Voigt lines whose parameters are interpolated over a grid.

A clone holds, for every point of a rectilinear label grid, one parameter set per line
(centre offset, ln amplitude, Gaussian and Lorentzian widths) and one residual-flux floor.
At labels between grid points every parameter is interpolated multilinearly, and the
spectrum is

    flux(lambda) = floor + (1 - floor) exp(-sum_l a_l phi_l(lambda)),

with ``phi_l`` the area-normalized Thompson-Cox-Hastings pseudo-Voigt profile of line
``l`` (in pixels of the model grid) and ``a_l`` its amplitude. The sum in the exponent
makes blends multiply like optical depths; the floor lets saturated cores stop above
zero flux, as real and synthetic line cores do.

Each line reaches a fixed window of pixels around its centre (its ``half_window``,
chosen at build time from its depth); profiles are summed block by block with the
static tables of the line-list generator (:mod:`jaxspec.linelist.blocks`): fixed
shapes and no scatter.

File format (HDF5, :func:`save_clone` / :func:`load_clone`), version :data:`CLONE_VERSION`:
root attributes ``format = "jaxspec-clone"``, ``version``, ``label_names`` (JSON list);
datasets ``wave`` (P,), ``line_pixel`` (n_lines,) float64 line centres in model pixels,
``half_window`` (n_lines,) int, ``axes/<label>`` (n_label,) grid values, and
``params/<name>`` of shape (n_1, ..., n_L, n_lines) for ``dpos``, ``ln_amp``,
``ln_sigma``, ``ln_gamma`` and (n_1, ..., n_L) for ``floor``.
"""

from __future__ import annotations

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.linelist.blocks import block_profile_sum, build_block_groups
from jaxspec.physics.grid import check_wavelengths
from jaxspec.physics.voigt import pseudo_voigt_params
from jaxspec.spectral_model import check_labels

__all__ = ["CLONE_VERSION", "ClonedModel", "load_clone", "save_clone"]

#: Version of the clone HDF5 layout written by :func:`save_clone`; other versions are refused.
CLONE_VERSION = 1
_FORMAT = "jaxspec-clone"
LINE_PARAMS = ("dpos", "ln_amp", "ln_sigma", "ln_gamma")
_LN2 = float(np.log(2.0))


class _Static:
    """Untraced metadata of a clone (pytree aux data, compared by identity)."""

    __slots__ = ("label_names", "wave", "line_pixel", "half_window", "groups")

    def __init__(self, label_names, wave, line_pixel, half_window):
        self.label_names = tuple(label_names)
        self.wave = wave
        self.line_pixel = line_pixel
        self.half_window = half_window
        self.groups = window_groups(line_pixel, half_window, wave.size)


def window_groups(line_pixel, half_window, n_pix: int):
    """Static block tables (:func:`jaxspec.linelist.blocks.build_block_groups`) of the lines.

    Args:
        line_pixel: (n_lines,) line centres [model pixels].
        half_window: (n_lines,) pixels each side of a centre a line reaches.
        n_pix: number of model pixels.

    Returns:
        list of :class:`~jaxspec.linelist.blocks.BlockGroup` (the dummy line is ``n_lines``).
    """
    line_pixel = np.asarray(line_pixel, dtype=np.float64)
    return build_block_groups(line_pixel, np.floor(line_pixel).astype(np.int64),
                              np.zeros(line_pixel.size, bool), np.asarray(half_window, np.float64), int(n_pix))


def line_flux(params, line_pixel, groups, n_pix):
    """Spectrum (n_pix,) from one set of line parameters (no interpolation).

    Args:
        params: dict with ``dpos``, ``ln_amp``, ``ln_sigma``, ``ln_gamma`` (n_lines,) and
            ``floor`` () arrays (pixel units for positions and widths).
        line_pixel: (n_lines,) float64 numpy line centres [model pixels].
        groups: the output of :func:`window_groups`.
        n_pix: number of model pixels.

    Returns:
        (n_pix,) normalized flux.
    """
    dtype = params["ln_amp"].dtype
    sigma = jnp.exp(params["ln_sigma"])
    gamma = jnp.exp(params["ln_gamma"])
    hw, mix = pseudo_voigt_params(sigma, gamma)
    amp = jnp.exp(params["ln_amp"])
    coef = (amp * (1.0 - mix) * np.sqrt(_LN2 / np.pi) / hw, _LN2 / hw**2, amp * mix * hw / np.pi, hw**2)

    def pad(a, v):  # the dummy line of the block tables, contributing nothing
        return jnp.concatenate([a, jnp.full((1,), v, dtype)])

    coef = [pad(c, v) for c, v in zip(coef, (0.0, 1.0, 0.0, 1.0), strict=True)]
    frac = pad(jnp.asarray(line_pixel - np.floor(line_pixel), dtype) + params["dpos"], 0.0)
    tau = block_profile_sum(groups, frac, coef, coef, n_pix)
    floor = params["floor"]
    return floor + (1.0 - floor) * jnp.exp(-tau)


@jax.tree_util.register_pytree_node_class
class ClonedModel:
    """A spectral model cloned from a synthetic grid: interpolated pseudo-Voigt lines.

    Built by :func:`jaxspec.clone.clone_grid` (or read with :func:`load_clone`); it
    satisfies :class:`jaxspec.SpectralModel`, so ``fit_binary(..., model=clone)`` works.

    Args:
        label_names: the L label names of the grid axes (e.g. ``("teff", "logg", "feh")``).
        axes: L increasing (n_i,) arrays of grid values in label units (teff [K], logg
            and feh [dex]).
        params: dict of line parameters on the grid: ``dpos`` (centre offset [pixels]),
            ``ln_amp`` (ln of the integrated amplitude [pixels]), ``ln_sigma`` and
            ``ln_gamma`` (ln of the Gaussian sigma and Lorentzian HWHM [pixels]), each
            of shape (n_1, ..., n_L, n_lines), and ``floor`` (n_1, ..., n_L), the
            residual flux of a fully saturated line.
        wave: (n_pix,) vacuum wavelengths [A] of the model grid, uniform in ln(lambda).
        line_pixel: (n_lines,) line centres [model pixels] (the matched starting centres).
        half_window: (n_lines,) number of pixels each side of a line's centre it reaches.
        _static: internal (the metadata object shared by pytree copies); leave it out.

    Labels outside the grid are held at the grid's edge (each parameter keeps its edge
    value), so the flux is finite everywhere and its gradient is zero beyond the box.
    """

    def __init__(self, label_names, axes, params, wave, line_pixel, half_window, *, _static=None):
        self._static = _static
        self.axes = tuple(axes)
        self.params = dict(params)
        if _static is None:
            wave = check_wavelengths(wave, "wave", min_size=2)
            names = tuple(label_names)
            if len(names) != len(self.axes):
                raise ValueError(f"{len(names)} label names for {len(self.axes)} grid axes")
            shape = tuple(int(np.size(a)) for a in self.axes)
            line_pixel = np.asarray(line_pixel, dtype=np.float64)
            half_window = np.asarray(half_window, dtype=np.int64)
            if line_pixel.shape != half_window.shape or line_pixel.ndim != 1:
                raise ValueError(
                    f"line_pixel {line_pixel.shape} and half_window {half_window.shape} must be (n_lines,)"
                )
            for a, name in zip(self.axes, names, strict=True):
                a = np.asarray(a)
                if a.ndim != 1 or a.size < 2 or np.any(np.diff(a) <= 0):
                    raise ValueError(f"grid axis {name!r} must hold >= 2 increasing values, got {a}")
            for key in LINE_PARAMS + ("floor",):
                want = shape + ((line_pixel.size,) if key != "floor" else ())
                if key not in self.params or np.shape(self.params[key]) != want:
                    got = np.shape(self.params[key]) if key in self.params else "missing"
                    raise ValueError(f"clone parameter {key!r} must have shape {want}, got {got}")
            self._static = _Static(names, wave, line_pixel, half_window)

    # pytree -------------------------------------------------------------
    def tree_flatten(self):
        """JAX pytree protocol: children ``(axes, params)`` (traced), aux the untraced metadata."""
        return (self.axes, self.params), self._static

    @classmethod
    def tree_unflatten(cls, static, children):
        """JAX pytree protocol: rebuild a clone from :meth:`tree_flatten`'s output.

        Args:
            static: the aux data (label names, wavelengths, line centres and windows).
            children: ``(axes, params)``.
        """
        axes, params = children
        return cls(None, axes, params, None, None, None, _static=static)

    # SpectralModel --------------------------------------------------------
    @property
    def label_names(self) -> tuple[str, ...]:
        """The label names, in the order ``flux`` expects them."""
        return self._static.label_names

    @property
    def wave(self) -> np.ndarray:
        """(n_pix,) vacuum wavelengths [A] of the model grid, uniform in ln(lambda)."""
        return self._static.wave

    @property
    def label_bounds(self) -> np.ndarray:
        """(n_labels, 2) first and last grid value of each label, in label units."""
        return np.array([[float(a[0]), float(a[-1])] for a in self.axes])

    @property
    def n_lines(self) -> int:
        """Number of pseudo-Voigt lines in the clone."""
        return int(self._static.line_pixel.size)

    @property
    def line_wave(self) -> np.ndarray:
        """(n_lines,) vacuum wavelengths [A] of the lines' starting centres."""
        w = self._static.wave
        dlnlam = np.log(w[-1] / w[0]) / (w.size - 1)
        return w[0] * np.exp(self._static.line_pixel * dlnlam)

    def line_params(self, labels) -> dict:
        """Line parameters interpolated (multilinearly) at one label vector.

        Args:
            labels: (n_labels,) in ``label_names`` order and label units (teff [K],
                logg and feh [dex]).

        Returns:
            dict of (n_lines,) arrays ``dpos``, ``ln_amp``, ``ln_sigma``, ``ln_gamma`` and
            the scalar ``floor`` (pixel units).
        """
        check_labels(labels, self.label_names)
        labels = jnp.asarray(labels)
        lo, t = [], []
        for k, axis in enumerate(self.axes):
            axis = jnp.asarray(axis, labels.dtype)
            i = jnp.clip(jnp.searchsorted(axis, labels[k], side="right") - 1, 0, axis.size - 2)
            lo.append(i)
            t.append(jnp.clip((labels[k] - axis[i]) / (axis[i + 1] - axis[i]), 0.0, 1.0))
        out = {}
        for key, arr in self.params.items():
            arr = jnp.asarray(arr, labels.dtype)
            acc = 0.0
            for corner in itertools.product((0, 1), repeat=len(self.axes)):
                wgt = 1.0
                for c, tk in zip(corner, t, strict=True):
                    wgt = wgt * (tk if c else 1.0 - tk)
                acc = acc + wgt * arr[tuple(i + c for i, c in zip(lo, corner, strict=True))]
            out[key] = acc
        return out

    def flux(self, labels):
        """Normalized flux for one label vector. Pure, jit/vmap/grad-safe.

        Args:
            labels: (n_labels,) in ``label_names`` order and label units (teff [K],
                logg and feh [dex]).

        Returns:
            (n_pix,) continuum-normalized rest-frame flux on :attr:`wave`.
        """
        s = self._static
        return line_flux(self.line_params(labels), s.line_pixel, s.groups, s.wave.size)

    def flux_batch(self, labels, *, batch_size: int = 16):
        """Normalized flux (n_spec, n_pix) for labels (n_spec, n_labels), ``batch_size`` at a time.

        Args:
            labels: (n_spec, n_labels) in ``label_names`` order and label units (teff
                [K], logg and feh [dex]).
            batch_size: spectra per ``jax.lax.map`` step.

        Returns:
            (n_spec, n_pix) continuum-normalized flux.
        """
        check_labels(labels, self.label_names)
        return jax.lax.map(self.flux, jnp.asarray(labels), batch_size=batch_size)

    def __repr__(self) -> str:
        w = self.wave
        grid = " x ".join(f"{np.size(a)} {n}" for a, n in zip(self.axes, self.label_names, strict=True))
        return f"ClonedModel({self.n_lines} lines, {w[0]:.1f}-{w[-1]:.1f} A, {w.size} pixels, grid {grid})"


def save_clone(path, clone: ClonedModel, **attrs) -> None:
    """Write a clone to HDF5 (the layout of this module, version :data:`CLONE_VERSION`).

    Args:
        path: the file to create (overwritten).
        clone: a :class:`ClonedModel`.
        **attrs: extra JSON-serializable root attributes (e.g. the build report).
    """
    import h5py

    s = clone._static
    with h5py.File(path, "w") as f:
        f.attrs["format"] = _FORMAT
        f.attrs["version"] = CLONE_VERSION
        f.attrs["label_names"] = json.dumps(list(s.label_names))
        for k, v in attrs.items():
            f.attrs[k] = json.dumps(v)
        f.create_dataset("wave", data=s.wave)
        f.create_dataset("line_pixel", data=s.line_pixel)
        f.create_dataset("half_window", data=s.half_window)
        for name, a in zip(s.label_names, clone.axes, strict=True):
            f.create_dataset(f"axes/{name}", data=np.asarray(a, np.float64))
        for key, a in clone.params.items():
            f.create_dataset(f"params/{key}", data=np.asarray(a, np.float32), compression="gzip")


def load_clone(path) -> ClonedModel:
    """Read a clone written by :func:`save_clone`.

    Args:
        path: an HDF5 clone file.

    Returns:
        The :class:`ClonedModel` (float32 parameters).

    Raises:
        ValueError: not a readable HDF5 file, not a clone file, a clone of another
            format version (both versions named), or missing or inconsistent datasets.
    """
    from jaxspec._h5 import open_versioned

    with open_versioned(path, _FORMAT, CLONE_VERSION, "clone", "rebuild the clone with jaxspec.clone.clone_grid") as f:
        try:
            names = tuple(json.loads(f.attrs["label_names"]))
            axes = [f[f"axes/{n}"][()] for n in names]
            params = {k: f[f"params/{k}"][()] for k in LINE_PARAMS + ("floor",)}
            wave, line_pixel, hw = f["wave"][()], f["line_pixel"][()], f["half_window"][()]
        except KeyError as err:
            raise ValueError(f"{path}: clone file lacks {err}") from None
    return ClonedModel(names, axes, params, wave, line_pixel, hw)
