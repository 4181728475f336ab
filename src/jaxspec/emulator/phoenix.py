"""Load the Goettingen PHOENIX HiRes library (Husser et al. 2013) into the HDF5 training-grid schema.

Layout of the library (as distributed, e.g. ``PHOENIX-ACES-AGSS-COND-2011/Z-0.0/``):

* one FITS file per model, named ``lte05800-4.50-0.0.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits``,
  ``lte04300-1.00+0.5.PHOENIX-...fits`` or, alpha-enhanced,
  ``lte05000-4.00-1.0.Alpha=+0.40.PHOENIX-...fits``: Teff [K] with 5 digits, then
  log g written with a *minus* sign for positive gravity (``-4.50`` is log g = 4.50),
  then [M/H] with an explicit sign (``-0.0`` is 0.0), then optionally [alpha/M];
* the primary HDU holds F_lambda [erg/s/cm^2/cm] as a 1-D float32 array, and the header
  carries the labels as ``PHXTEFF``, ``PHXLOGG``, ``PHXM_H`` and ``PHXALPHA``;
* the wavelengths are a separate file ``WAVE_PHOENIX-ACES-AGSS-COND-2011.fits`` whose
  primary HDU is a 1-D float64 array of **vacuum** wavelengths [A] (``UNIT = 'Angstrom'``),
  shared by all models.

:func:`load_phoenix_grid` reads every model, cuts the wavelength range, normalizes each
spectrum with :func:`continuum_normalize` and optionally writes the grid with
:func:`jaxspec.emulator.train.write_grid`. Labels are ``teff``, ``logg``, ``feh`` (the
PHOENIX [M/H]) and ``alpha_fe`` (the PHOENIX [alpha/M]).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from jaxspec.emulator.train import write_grid
from jaxspec.physics.constants import C_KMS
from jaxspec.physics.grid import check_wavelengths

__all__ = ["LABELS", "continuum_normalize", "load_phoenix_grid", "parse_phoenix_name"]

#: label name -> (PHOENIX header keyword, largest name/header difference explained by rounding)
LABELS = {
    "teff": ("PHXTEFF", 0.5),
    "logg": ("PHXLOGG", 0.005),
    "feh": ("PHXM_H", 0.05),
    "alpha_fe": ("PHXALPHA", 0.005),
}
_ROUNDING_SLACK = 1e-6

WAVE_FILE = "WAVE_PHOENIX-ACES-AGSS-COND-2011.fits"

_NAME_RE = re.compile(
    r"^lte(?P<teff>\d{4,5})"
    r"(?P<logg>[+-]\d+\.\d+)"
    r"(?P<feh>[+-]\d+\.\d+)"
    r"(?:\.Alpha=(?P<alpha>[+-]\d+\.\d+))?"
    r"\.PHOENIX-[^/\\]*\.fits(?:\.gz)?$"
)


def parse_phoenix_name(name) -> dict:
    """Labels encoded in a PHOENIX file name.

    Args:
        name: a file name or path, e.g. ``"lte05800-4.50-0.0.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits"``.

    Returns:
        ``dict(teff, logg, feh, alpha_fe)`` as floats; ``alpha_fe`` is 0.0 when the name has
        no ``.Alpha=`` part. The log g field is written with the opposite sign (``-4.50``
        means log g = 4.50); signed zeros are returned as +0.0.

    Raises:
        ValueError: the name does not follow the PHOENIX convention.
    """
    base = Path(str(name)).name
    m = _NAME_RE.match(base)
    if m is None:
        raise ValueError(
            f"{base!r} is not a PHOENIX model file name "
            "(expected e.g. 'lte05800-4.50-0.0.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits')"
        )
    alpha = m.group("alpha")
    return {
        "teff": float(m.group("teff")),
        "logg": -float(m.group("logg")) + 0.0,
        "feh": float(m.group("feh")) + 0.0,
        "alpha_fe": (float(alpha) + 0.0) if alpha is not None else 0.0,
    }


def _segment_bounds(x: np.ndarray, width: float) -> np.ndarray:
    """Indices splitting sorted ``x`` into equal-width segments of about ``width``."""
    n_seg = max(1, int(round((x[-1] - x[0]) / width)))
    edges = np.linspace(x[0], x[-1], n_seg + 1)
    inner = np.searchsorted(x, edges[1:-1], side="left")
    return np.concatenate([[0], inner, [x.size]])


def _interp_anchors(xa: np.ndarray, ya: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Monotone-cubic (PCHIP) curve through the anchors, extended linearly beyond the ends."""
    if xa.size == 1:
        return np.full_like(x, ya[0])
    from scipy.interpolate import PchipInterpolator

    p = PchipInterpolator(xa, ya, extrapolate=False)
    d = p.derivative()
    xc = np.clip(x, xa[0], xa[-1])
    c = p(xc)
    lo, hi = x < xa[0], x > xa[-1]
    c[lo] += d(xa[0]) * (x[lo] - xa[0])
    c[hi] += d(xa[-1]) * (x[hi] - xa[-1])
    return c


def _continuum_1d(x, f, bounds, quantile, n_iter, min_pixels):
    cont = np.ones_like(f)
    for _ in range(n_iter + 1):
        r = f / cont
        xa, ya = [], []
        for i0, i1 in zip(bounds[:-1], bounds[1:], strict=True):
            if i1 - i0 < min_pixels:
                continue
            rs = r[i0:i1]
            sel = rs >= np.quantile(rs, quantile)
            # The anchor sits at the mean position of the selected (highest) pixels and
            # carries their median ratio to the current continuum estimate.
            k = np.flatnonzero(sel) + i0
            xa.append(x[k].mean())
            ya.append(np.median(r[k]) * np.interp(xa[-1], x[i0:i1], cont[i0:i1]))
        if not xa:
            raise ValueError(
                f"no normalization window holds {min_pixels} pixels; widen window_kms or lower min_pixels"
            )
        cont = _interp_anchors(np.asarray(xa), np.asarray(ya), x)
        if not np.all(np.isfinite(cont)) or np.any(cont <= 0):
            raise ValueError("the continuum estimate is not finite and positive (is the flux positive?)")
    return cont


def continuum_normalize(
    wave,
    flux,
    *,
    window_kms: float = 300.0,
    quantile: float = 0.95,
    n_iter: int = 3,
    min_pixels: int = 10,
    return_continuum: bool = False,
):
    """Divide a synthetic spectrum by an upper-envelope pseudo-continuum.

    Method (deterministic, no free fit parameters beyond the two below):

    1. ``ln(lambda)`` is split into equal segments of about ``window_kms`` each (so the
       windows have the same velocity width everywhere, independent of the pixel sampling,
       which is variable in PHOENIX).
    2. In each segment the pixels whose flux ratio to the current continuum estimate is at
       or above the ``quantile`` of that segment are selected (the "upper envelope"); one
       anchor is placed at their mean ``ln(lambda)`` with the current continuum times their
       median ratio. Placing the anchor where the selected pixels are, not at the segment
       centre, removes the bias of a sloped continuum (the brightest pixels then sit at one
       end of the window).
    3. A monotone cubic (PCHIP) through the anchors, extended linearly beyond the outermost
       anchors, is the new continuum estimate; steps 2-3 are repeated ``n_iter`` times on the
       flux divided by the previous estimate, so slope and curvature of the continuum
       (e.g. a Planck function) are removed before the quantile is taken.

    Returns ``flux / continuum``: ~1 in line-free regions, and line depths relative to the
    local continuum.

    Limits: this is a *pseudo*-continuum. It reaches the true continuum only where each
    window contains at least a fraction ``1 - quantile`` of (nearly) line-free pixels. In
    line-crowded regions (cool stars, the blue/UV, molecular bands of M dwarfs) the envelope
    lies below the true continuum, and features broader than the window (Balmer and Ca II H&K
    wings, TiO/CN bands) are partly absorbed into it; a wider window preserves them at the
    price of following the continuum shape less closely. Near the ends of the range anchors
    are at most half a window inside, so normalize with a margin of about one window and
    crop afterwards (as :func:`load_phoenix_grid` does). The method assumes noise-free flux
    (synthetic spectra); for noisy data lower ``quantile`` so noise spikes do not set the level.

    Args:
        wave: (P,) wavelengths [A], strictly increasing (any sampling).
        flux: (P,) or (N, P) positive flux on ``wave``.
        window_kms: width of the envelope windows [km/s].
        quantile: upper quantile defining the envelope within each window, in (0, 1].
        n_iter: refinement passes after the first estimate.
        min_pixels: windows with fewer pixels get no anchor.
        return_continuum: also return the continuum.

    Returns:
        Normalized flux with the shape of ``flux`` (float64), and the continuum too when
        ``return_continuum``.

    Raises:
        ValueError: bad arguments, non-finite flux, too few pixels per window, or a
            continuum that is not positive.
    """
    wave = check_wavelengths(wave, "wave", min_size=2)
    flux = np.asarray(flux, dtype=np.float64)
    if flux.shape[-1:] != wave.shape or flux.ndim not in (1, 2):
        raise ValueError(f"flux must have shape (P,) or (N, P) with P = {wave.size}; got {flux.shape}")
    if not (window_kms > 0):
        raise ValueError(f"window_kms must be positive, got {window_kms}")
    if not (0.0 < quantile <= 1.0):
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    if n_iter < 0 or min_pixels < 1:
        raise ValueError(f"n_iter must be >= 0 and min_pixels >= 1; got {n_iter}, {min_pixels}")
    bad = ~np.isfinite(flux)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise ValueError(f"flux is not finite (first at index {tuple(int(i) for i in idx)})")
    x = np.log(wave)
    bounds = _segment_bounds(x, window_kms / C_KMS)
    rows = flux.reshape(-1, wave.size)
    cont = np.stack([_continuum_1d(x, f, bounds, quantile, n_iter, min_pixels) for f in rows])
    cont = cont.reshape(flux.shape)
    norm = flux / cont
    return (norm, cont) if return_continuum else norm


def _resolve_wave_file(directory: Path, wave_file) -> Path:
    if wave_file is not None:
        p = Path(wave_file)
        if not p.is_file() and not p.is_absolute() and (directory / p).is_file():
            p = directory / p
        if not p.is_file():
            raise ValueError(f"wavelength file {str(wave_file)!r} does not exist")
        return p
    p = directory / WAVE_FILE
    if p.is_file():
        return p
    found = sorted(directory.glob("WAVE_*.fits"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(f"missing wavelength file: no {WAVE_FILE} (or WAVE_*.fits) in {directory}")
    raise ValueError(f"several wavelength files in {directory} ({[q.name for q in found]}); pass wave_file")


def _read_primary(path: Path, what: str):
    """(data, header) of the primary HDU; ValueError naming the file on any read problem."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul[0].data
            header = hdul[0].header.copy()
            data = None if data is None else np.array(data)
    except Exception as err:  # astropy raises OSError, ValueError, TypeError, VerifyError...
        raise ValueError(f"{path}: not a readable FITS {what} ({type(err).__name__}: {err})") from None
    if data is None or data.ndim != 1:
        shape = None if data is None else data.shape
        raise ValueError(f"{path}: the primary HDU must hold a 1-D {what} array, got shape {shape}")
    return data, header


def _read_wave(path: Path) -> np.ndarray:
    data, header = _read_primary(path, "wavelength")
    unit = str(header.get("UNIT", "Angstrom")).strip().lower()
    if unit not in ("angstrom", "angstroms", "a"):
        raise ValueError(f"{path}: wavelength unit {header.get('UNIT')!r} is not Angstrom")
    try:
        return check_wavelengths(data, f"wavelengths in {path}", min_size=2)
    except ValueError as err:
        raise ValueError(str(err)) from None


def _labels_of(path: Path, header) -> dict:
    """Labels from the PHX* header keywords, falling back to (and checked against) the name."""
    try:
        from_name = parse_phoenix_name(path.name)
    except ValueError:
        from_name = None
    out = {}
    for name, (key, tol) in LABELS.items():
        value = header.get(key)
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{path}: header keyword {key} = {value!r} is not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{path}: header keyword {key} = {value!r} is not finite")
        if from_name is not None and value is not None:
            if abs(value - from_name[name]) > tol + _ROUNDING_SLACK:
                raise ValueError(
                    f"{path}: header {key} = {value} and the file name ({name} = {from_name[name]}) "
                    "disagree by more than rounding"
                )
        elif value is None:
            if from_name is None:
                raise ValueError(
                    f"{path}: no header keyword {key} and the file name is not a PHOENIX model name"
                )
            value = from_name[name]
        out[name] = value + 0.0
    return out


def load_phoenix_grid(
    directory,
    *,
    wave_min: float,
    wave_max: float,
    wave_file=None,
    pattern: str = "lte*.fits",
    label_names=("teff", "logg", "feh"),
    out=None,
    window_kms: float = 300.0,
    quantile: float = 0.95,
):
    """Read a directory of PHOENIX HiRes models into a continuum-normalized training grid.

    Every file matching ``pattern`` in ``directory`` is read (``"**/lte*.fits"`` also
    searches sub-directories such as ``Z-0.0/``), in sorted path order. The spectra are cut
    to ``[wave_min, wave_max]`` plus a margin of one normalization window on each side,
    normalized with :func:`continuum_normalize` (``window_kms``, ``quantile``) and then
    cropped to ``[wave_min, wave_max]``.

    Labels come from the ``PHXTEFF``/``PHXLOGG``/``PHXM_H``/``PHXALPHA`` header keywords;
    a missing keyword falls back to the file name, and a keyword that disagrees with the
    name by more than the rounding of the name is an error.

    Args:
        directory: the folder with the model files.
        wave_min, wave_max: vacuum wavelength range [A] kept in the grid.
        wave_file: the wavelength file (a path, or a name inside ``directory``); by default
            ``WAVE_PHOENIX-ACES-AGSS-COND-2011.fits``, else the only ``WAVE_*.fits``, in
            ``directory``.
        pattern: glob pattern of the model files, relative to ``directory``.
        label_names: the labels to return, a subset of ``teff``, ``logg``, ``feh``, ``alpha_fe``.
        out: if given, the HDF5 path the grid is written to (:func:`write_grid`; the file
            list and normalization settings are stored as extra attributes).
        window_kms, quantile: passed to :func:`continuum_normalize`: the width of the
            normalization windows [km/s] (default 300) and the flux quantile of the upper
            envelope in each (default 0.95).

    Returns:
        ``(labels (N, L) float64, flux (N, P) float32, wave (P,) float64, label_names)``.

    Raises:
        ValueError: no matching files, a missing or invalid wavelength file, a corrupt FITS
            file, a flux length different from the wavelength length, non-finite flux in
            the range, labels that disagree or are missing, duplicate models, an unknown
            label name, or an empty wavelength cut; the message names the file and problem.
    """
    directory = Path(directory)
    label_names = tuple(label_names)
    unknown = [n for n in label_names if n not in LABELS]
    if unknown or not label_names or len(set(label_names)) != len(label_names):
        raise ValueError(f"label_names must be distinct names from {list(LABELS)}; got {list(label_names)}")
    if not (wave_min < wave_max):
        raise ValueError(f"need wave_min < wave_max, got {wave_min}, {wave_max}")
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory")
    files = sorted(p for p in directory.glob(pattern) if p.is_file() and not p.name.startswith("WAVE_"))
    if not files:
        raise ValueError(f"no files matching {pattern!r} in {directory}")
    wave_path = _resolve_wave_file(directory, wave_file)
    wave_all = _read_wave(wave_path)

    margin = math.exp(window_kms / C_KMS)
    sel = (wave_all >= wave_min / margin) & (wave_all <= wave_max * margin)
    crop = (wave_all[sel] >= wave_min) & (wave_all[sel] <= wave_max)
    if not crop.any():
        raise ValueError(
            f"no wavelengths in [{wave_min}, {wave_max}] A: {wave_path.name} spans "
            f"[{wave_all[0]:.6g}, {wave_all[-1]:.6g}] A"
        )
    wave_cut = wave_all[sel]

    labels, fluxes, seen = [], [], {}
    for path in files:
        data, header = _read_primary(path, "flux")
        if data.size != wave_all.size:
            raise ValueError(
                f"{path}: flux has {data.size} pixels but {wave_path.name} has {wave_all.size} wavelengths"
            )
        f = np.asarray(data[sel], dtype=np.float64)
        bad = ~np.isfinite(f)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{path}: non-finite flux in the requested range ({int(bad.sum())} pixels, first at "
                f"{wave_cut[i]:.4f} A)"
            )
        lab = _labels_of(path, header)
        key = tuple(lab.values())
        if key in seen:
            raise ValueError(f"{path} and {seen[key]} have the same labels {lab}")
        seen[key] = path
        try:
            norm = continuum_normalize(wave_cut, f, window_kms=window_kms, quantile=quantile)
        except ValueError as err:
            raise ValueError(f"{path}: continuum normalization failed: {err}") from None
        labels.append([lab[n] for n in label_names])
        fluxes.append(norm[crop].astype(np.float32))

    labels = np.asarray(labels, dtype=np.float64)
    flux = np.stack(fluxes)
    wave = wave_cut[crop]
    if out is not None:
        import h5py

        write_grid(out, labels, flux, wave, label_names)
        with h5py.File(out, "a") as h5:
            h5.attrs["source"] = "PHOENIX-ACES-AGSS-COND-2011 HiRes (Husser et al. 2013)"
            h5.attrs["files"] = json.dumps([str(p.relative_to(directory)) for p in files])
            h5.attrs["wave_file"] = wave_path.name
            h5.attrs["continuum"] = json.dumps(
                {"method": "continuum_normalize", "window_kms": window_kms, "quantile": quantile}
            )
    return labels, flux, wave, label_names
