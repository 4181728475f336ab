"""The model ``model=None`` means: whatever covers the observed pixels, chosen from their wavelengths.

Three kinds of model stand behind the default, tried in this order:

1. **The bundled emulator** (:func:`jaxspec.default_model`, 4950-5350 A) when every usable pixel
   lies inside its band and the resolving power is at most 30,000: the fastest model.
2. **The line-list generator on the observed segments** (:class:`BandModel`) anywhere else in the
   built-in line list's optical range (3800-9000 A): one :class:`~jaxspec.LineListGenerator` per
   observed segment (CCD, arm, echelle order; segments found from gaps in the wavelengths), each
   spanning the segment widened by :data:`MARGIN_KMS` for Doppler shifts and kernels, all on one
   ln(lambda) step, fine pixels averaged ``bin`` at a time (as the bundled emulator was trained).
   Nothing is trained and nothing is downloaded: the model is built from the package's own line
   list in about a second and cached for spectra with the same coverage.
3. **An installed H-band model** for APOGEE (``jaxspec models install binspec PATH`` converts a
   local binspec checkout once into the user's cache, :func:`installed_model_path`).

Pixels outside every model's range are left out of the fit (``ModelChoice.keep``), and the choice is
stated in words (``ModelChoice.description``: model, range, pixels used of all), which
:func:`jaxspec.fit_binary` puts in its result (``BinaryFit.model_info``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.physics.constants import C_KMS

__all__ = [
    "BandModel",
    "ModelChoice",
    "OPTICAL_LABEL_BOUNDS",
    "choose_model",
    "installed_model_path",
    "install_binspec",
    "optical_range",
    "pixel_plan",
]

#: Label box of the generator models [teff K, logg dex, feh dex].
OPTICAL_LABEL_BOUNDS = {"teff": (3800.0, 8000.0), "logg": (0.5, 5.5), "feh": (-2.5, 0.5)}
#: Half-width [km/s] by which each model segment extends beyond the observed pixels: the largest
#: fitted shift (1.5 x the default rv_range of 300 km/s) and room for the rotation and LSF kernels.
MARGIN_KMS = 500.0
#: Wavelengths [A] of model segments are rounded outward to multiples of this, so that spectra of
#: one instrument with slightly different wavelength solutions share one cached model.
ROUND_A = 5.0
#: Largest resolving power the bundled emulator (3 km/s pixels) is used for.
EMULATOR_MAX_RESOLUTION = 30000.0
#: File name of the installed APOGEE model in :func:`models_dir`.
APOGEE_FILE = "apogee_binspec.h5"
#: Labels of binspec's APOGEE network (El-Badry et al. 2018), in its order.
BINSPEC_LABELS = ("teff", "logg", "feh", "mgfe", "vmacro")
INSTALL_HINT = "jaxspec models install binspec PATH (PATH: a binspec data folder with NN_normalized_spectra.npz)"


def models_dir() -> Path:
    """Folder of installed models: ``$JAXSPEC_MODELS_DIR``, else ``<XDG cache>/jaxspec/models``."""
    if os.environ.get("JAXSPEC_MODELS_DIR"):
        return Path(os.environ["JAXSPEC_MODELS_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "jaxspec" / "models"


def installed_model_path(name: str = "apogee") -> Path:
    """Where the installed model ``name`` lives (it may not exist yet)."""
    if name != "apogee":
        raise ValueError(f"unknown installed model {name!r}; the one installable model is 'apogee'")
    return models_dir() / APOGEE_FILE


def install_binspec(path, *, out=None) -> Path:
    """Convert a local binspec checkout's APOGEE network into a jaxspec emulator file, once.

    Args:
        path: a folder holding ``NN_normalized_spectra.npz`` and ``apogee_wavelength.npz`` (binspec's
            ``data`` folder), or the path of ``NN_normalized_spectra.npz`` itself.
        out: file to write; default :func:`installed_model_path` (found by every later fit).

    Returns:
        The path written.

    Raises:
        FileNotFoundError: the network or the wavelength file is missing (both paths named).
        ValueError: the files are not binspec's layout.
    """
    from jaxspec.emulator.io import from_binspec

    path = Path(path)
    net = path / "NN_normalized_spectra.npz" if path.is_dir() else path
    wfile = net.parent / "apogee_wavelength.npz"
    for f in (net, wfile):
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found: give binspec's data folder, which holds "
                                    "NN_normalized_spectra.npz and apogee_wavelength.npz")
    with np.load(wfile) as d:
        if "wavelength" not in d.files:
            raise ValueError(f"{wfile} has no 'wavelength' array (arrays: {d.files})")
        wave = np.asarray(d["wavelength"], dtype=np.float64)
    em = from_binspec(net, BINSPEC_LABELS, wave)
    out = Path(out) if out is not None else installed_model_path("apogee")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    em.save(tmp)
    os.replace(tmp, out)
    return out


@functools.cache
def _installed(path: str):
    from jaxspec.emulator.emulator import Emulator

    return Emulator.load(path)


def optical_range() -> tuple[float, float]:
    """(min, max) vacuum wavelength [A] the generator models can span: the built-in line list's."""
    return _optical_range()


@functools.cache
def _optical_range():
    from jaxspec.linelist.builtin import builtin_linelist

    w = np.asarray(builtin_linelist().wave)
    return float(w.min()), float(w.max())


def pixel_plan(resolution) -> tuple[float, int]:
    """(fine step [km/s], fine pixels averaged per model pixel) of a generator model for ``resolution``.

    The generator's profiles are sampled at the fine step (1 km/s resolves thermal widths of
    iron-peak lines; 2 km/s at R < 15,000, where an instrument FWHM >= 20 km/s hides the
    difference) and averaged ``bin`` at a time to model pixels of at most a sixth of the
    instrument's FWHM (3 km/s at R >= 15,000, as the bundled emulator; 6 km/s at R 7,500; 26 km/s at
    R 1,800). ``None`` (no LSF) is treated like R 30,000.
    """
    r = 30000.0 if resolution is None else float(np.nanmin(np.asarray(resolution, dtype=np.float64)))
    if not np.isfinite(r) or r <= 0:
        raise ValueError(f"resolution must be positive, got {resolution!r}")
    if r >= 40000.0:
        return 1.0, 1
    if r >= 15000.0:
        return 1.0, 3
    fine = 2.0
    return fine, max(1, int(C_KMS / (6.0 * r) / fine))


@jax.tree_util.register_pytree_node_class
class BandModel:
    """Line-list generators on several wavelength segments, binned, as one spectral model.

    Args:
        ranges: ((lo, hi), ...) vacuum wavelength ranges [A] of the segments, increasing and
            not overlapping.
        fine_kms: the generators' step [km/s].
        bin: fine pixels averaged into one model pixel.
        label_bounds: label box (default :data:`OPTICAL_LABEL_BOUNDS`).

    The segments are evaluated together: one line list, one set of block tables on the
    segments' grids laid side by side (see :meth:`flux`). A JAX pytree whose leaves are the
    line, atomic and block-table arrays: under
    ``jit`` they are arguments, not constants (as constants XLA folds the block tables' gathers
    and a 16,000-pixel fit took minutes to compile instead of seconds).

    The model grid is the segments' binned grids side by side: one ln(lambda) step
    ``fine_kms * bin / c`` throughout, with gaps between segments (the layout
    :class:`~jaxspec.models.BinaryModel` handles segment by segment, as APOGEE's chips).

    Attributes:
        label_names: ``("teff", "logg", "feh")``.
        generators: the :class:`~jaxspec.LineListGenerator` of each segment.
        ranges, fine_kms, bin: as given.
    """

    def __init__(self, ranges, *, fine_kms: float = 1.0, bin: int = 3, label_bounds=None):
        from jaxspec.linelist.blocks import BLOCK, build_block_groups
        from jaxspec.linelist.generator import LineListGenerator

        ranges = [(float(a), float(b)) for a, b in ranges]
        if not ranges:
            raise ValueError("BandModel needs at least one wavelength range")
        for (a0, b0), (a1, _) in zip(ranges, ranges[1:], strict=False):
            if a1 <= b0:
                raise ValueError(f"ranges must be increasing and disjoint; got {ranges}")
        self.ranges = tuple(ranges)
        self.fine_kms = float(fine_kms)
        self.bin = int(bin)
        if self.bin < 1:
            raise ValueError(f"bin must be >= 1, got {bin}")
        bounds = dict(OPTICAL_LABEL_BOUNDS, **(label_bounds or {}))
        self.generators = [LineListGenerator(wave_min=a, wave_max=b, pixel_kms=self.fine_kms,
                                             label_bounds=bounds) for a, b in ranges]
        self.label_names = self.generators[0].label_names
        k = self.bin
        waves, self._n = [], []
        for g in self.generators:
            n = (g.wave.size // k) * k
            if n < 2 * k:
                raise ValueError(f"segment {g.wave[0]:.1f}-{g.wave[-1]:.1f} A is shorter than two model pixels")
            self._n.append(n)
            lnw = np.log(g.wave[:n]).reshape(-1, k).mean(axis=1)
            waves.append(np.exp(lnw))
        self._wave = np.concatenate(waves)
        # One evaluation for all segments: their lines in one list and their grids side by side
        # on one pixel axis, each starting at a multiple of the block size, a line reaching only
        # its own segment's blocks. The line physics and the profile sums are then traced once,
        # not once per segment (a four-CCD GALAH fit compiled ~4x longer before).
        offsets, off = [], 0
        for g in self.generators:
            offsets.append(off)
            off += -(-g.wave.size // BLOCK) * BLOCK
        self._offsets, self._n_axis = tuple(offsets), off
        merged = copy.copy(self.generators[0])
        from jaxspec.linelist.strength import _continuum_nodes

        n_lines = [g.n_lines for g in self.generators]
        per_line = [key for key in merged._lines if key not in ("cont_nodes", "cont_i0", "cont_w")]
        lines = {key: jnp.concatenate([jnp.asarray(g._lines[key]) for g in self.generators]) for key in per_line}
        for key, v in lines.items():
            if v.shape[0] != sum(n_lines):
                raise RuntimeError(f"line array {key!r} is not one value per line")
        # the continuum-opacity nodes span all segments' lines
        nodes, i0, wgt = _continuum_nodes(np.concatenate([np.asarray(g._lines["wave"]) for g in self.generators]))
        dt = lines["wave"].dtype
        lines.update(cont_nodes=jnp.asarray(nodes, dt), cont_w=jnp.asarray(wgt, dt),
                     cont_i0=jnp.asarray(i0, jnp.int32))
        merged._lines = lines
        pos = np.concatenate([g._pos_np + o for g, o in zip(self.generators, offsets, strict=True)])
        pos_int = np.concatenate([g._pos_int + o for g, o in zip(self.generators, offsets, strict=True)])
        hydrogen = np.concatenate([g._hydrogen_np for g in self.generators])
        hw = np.concatenate([g._half_window for g in self.generators])
        line_seg = np.repeat(np.arange(len(self.generators)), n_lines)
        starts = np.arange(off // BLOCK) * BLOCK
        block_seg = np.searchsorted(np.asarray(offsets), starts, side="right") - 1
        merged._groups = build_block_groups(pos, pos_int, hydrogen, hw, off, line_segment=line_seg,
                                            block_segment=block_seg)
        self._merged = merged

    def tree_flatten(self):
        g = self._merged
        return ((g._lines, g._atomic, [(grp.tables, grp.offsets, grp.inverse) for grp in g._groups]),
                _Static(self))

    @classmethod
    def tree_unflatten(cls, aux, children):
        template = aux.model
        new = copy.copy(template)
        lines, atomic, groups = children
        g2 = copy.copy(template._merged)
        g2._lines, g2._atomic = lines, atomic
        g2._groups = [dataclasses.replace(grp, tables=t, offsets=o, inverse=i)
                      for grp, (t, o, i) in zip(template._merged._groups, groups, strict=True)]
        new._merged = g2
        return new

    @property
    def wave(self) -> np.ndarray:
        """(n_pix,) vacuum wavelengths [A], uniform in ln(lambda) within each segment."""
        return self._wave

    @property
    def label_bounds(self) -> np.ndarray:
        """(3, 2) bounds of teff [K], logg [dex], feh [dex]."""
        return self.generators[0].label_bounds

    @property
    def pixel_kms(self) -> float:
        """Model pixel [km/s]."""
        return self.fine_kms * self.bin

    def flux(self, labels):
        """(n_pix,) normalized flux on :attr:`wave` for one label vector (teff [K], logg, feh [dex])."""
        from jaxspec.spectral_model import check_labels

        check_labels(labels, self.label_names)
        labels = jnp.asarray(labels)
        g = self._merged
        p = g.params
        strength, sigma, gamma = g._line_params(labels, jnp.zeros(g._lines["wave"].shape[0], labels.dtype), p)
        eta = g._eta(strength, sigma, gamma, n_pix=self._n_axis)
        parts = []
        for seg, o, n in zip(self.generators, self._offsets, self._n, strict=True):
            f = g._flux_from_eta(eta[o:o + seg.wave.size], p)[:n]
            parts.append(f.reshape(-1, self.bin).mean(axis=1) if self.bin > 1 else f)
        return jnp.concatenate(parts)

    def __repr__(self) -> str:
        segs = ", ".join(f"{a:.0f}-{b:.0f}" for a, b in self.ranges)
        return (f"BandModel(generator on {len(self.ranges)} segment(s) {segs} A, {self._wave.size} pixels "
                f"of {self.pixel_kms:g} km/s)")


class _Static:
    """Pytree metadata of a :class:`BandModel`: the model itself, compared by identity (one
    cached model per coverage, so compiled programs are reused)."""

    def __init__(self, model):
        self.model = model

    def __eq__(self, other):
        return isinstance(other, _Static) and other.model is self.model

    def __hash__(self):
        return id(self.model)


@functools.lru_cache(maxsize=8)
def _band_model(ranges: tuple, fine_kms: float, bin: int) -> BandModel:
    return BandModel(ranges, fine_kms=fine_kms, bin=bin)


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """What ``model=None`` chose for one spectrum.

    Attributes:
        model: the spectral model.
        keep: (P,) bool, the input pixels the model covers (the others are left out of the fit).
        kind: ``"emulator"``, ``"generator"`` or ``"installed:apogee"``.
        description: one line for the fit summary and the results table.
    """

    model: object
    keep: np.ndarray
    kind: str
    description: str


def _segments(wave):
    """[(start, stop)] index ranges of ``wave``'s segments (:func:`~jaxspec.fit.continuum.find_segments`)."""
    if wave.size < 2:
        return [(0, wave.size)]
    from jaxspec.fit.continuum import find_segments

    seg = find_segments(wave)
    edges = np.concatenate([[0], np.flatnonzero(np.diff(seg)) + 1, [wave.size]])
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _ranges_text(model) -> str:
    w = np.asarray(model.wave)
    return f"{w[0]:.0f}-{w[-1]:.0f} A"


def choose_model(wave, resolution=None, ivar=None) -> ModelChoice:
    """The spectral model for a spectrum with no ``model`` given, and the pixels it covers.

    Args:
        wave: (P,) vacuum wavelengths [A], increasing.
        resolution: resolving power (a number or (P,) per pixel; None = unknown, treated as 30,000
            for the pixel size).
        ivar: (P,) inverse variance; pixels with ivar = 0 do not decide the choice.

    Returns:
        :class:`ModelChoice`.

    Raises:
        ValueError: no usable pixel inside any model (the spectrum's and every model's ranges
            named), or an H-band spectrum without the installed APOGEE model (the install command
            named).
    """
    from jaxspec.emulator.default import default_model

    wave = np.asarray(wave, dtype=np.float64)
    good = np.isfinite(wave) if ivar is None else (np.asarray(ivar) > 0) & np.isfinite(wave)
    if not np.any(good):
        raise ValueError("all pixels are masked (non-finite flux or err, or ivar = 0)")
    wg = wave[good]
    r_max = None if resolution is None else float(np.nanmax(np.asarray(resolution, dtype=np.float64)))
    n_all = wave.size

    def text(kind, model, keep):
        return f"{kind} {_ranges_text(model)}: {int(np.sum(keep & good))} of {int(np.sum(good))} usable pixels"

    em = default_model()
    ew = np.asarray(em.wave)
    if wg[0] >= ew[0] and wg[-1] <= ew[-1] and (r_max is None or r_max <= EMULATOR_MAX_RESOLUTION):
        keep = (wave >= ew[0]) & (wave <= ew[-1])
        return ModelChoice(em, keep, "emulator", text("bundled emulator", em, keep))

    lo, hi = optical_range()
    m = MARGIN_KMS / C_KMS
    in_opt = (wave >= lo * (1 + m)) & (wave <= hi * (1 - m))
    if np.sum(in_opt & good) >= 10:
        keep = in_opt & np.isfinite(wave)
        fine, k = pixel_plan(resolution)
        wk = wave[keep & good]
        ranges = []
        for a, b in _segments(wk):
            r0 = max(lo, np.floor(wk[a] * (1 - m) / ROUND_A) * ROUND_A)
            r1 = min(hi, np.ceil(wk[b - 1] * (1 + m) / ROUND_A) * ROUND_A)
            if ranges and r0 <= ranges[-1][1] + 2 * ROUND_A:
                ranges[-1] = (ranges[-1][0], r1)
            else:
                ranges.append((r0, r1))
        model = _band_model(tuple(ranges), fine, k)
        # pixels in the gaps between merged segments are inside the model too; those outside are not
        mw = model.wave
        inside = np.zeros(n_all, bool)
        for a, b in model.ranges:
            inside |= (wave >= max(a, mw[0])) & (wave <= min(b, mw[-1]))
        keep &= inside
        segs = len(ranges)
        kind = f"line-list generator ({segs} segment{'s' if segs > 1 else ''}, {model.pixel_kms:g} km/s pixels)"
        return ModelChoice(model, keep, "generator", text(kind, model, keep))

    apath = installed_model_path("apogee")
    if wg[0] >= 15000.0 and wg[-1] <= 17100.0:
        if not apath.is_file():
            raise ValueError(f"spectrum {wg[0]:.0f}-{wg[-1]:.0f} A is in the APOGEE H band, and no H-band "
                             f"model is installed ({apath} not found); install one once with: {INSTALL_HINT}")
        model = _installed(str(apath))
        mw = np.asarray(model.wave)
        keep = (wave >= mw[0]) & (wave <= mw[-1])
        return ModelChoice(model, keep, "installed:apogee",
                           text(f"installed APOGEE model ({apath.name})", model, keep))
    raise ValueError(
        f"spectrum {wg[0]:.1f}-{wg[-1]:.1f} A lies outside every model: the bundled emulator "
        f"{ew[0]:.0f}-{ew[-1]:.0f} A, the line-list generator {lo * (1 + m):.0f}-{hi * (1 - m):.0f} A, "
        f"the APOGEE H band 15000-17100 A ({'installed' if apath.is_file() else 'not installed: ' + INSTALL_HINT})"
    )
