"""Simulated binaries and single stars with known truths (for tests, benchmarks and demos).

``draw_binaries`` draws parameters uniformly inside a spectral model's label
box (or from given label rows), with velocities, rotation and flux ratio in
stated ranges; ``simulate`` turns parameters into noisy spectra through a
:class:`~jaxspec.models.BinaryModel` (Gaussian noise at a given S/N per pixel,
optionally with a sloped continuum).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["BinnedModel", "blaze_continuum", "draw_binaries", "simulate", "sloped_continuum", "stress_population"]


def draw_binaries(
    binary_model,
    n: int,
    rng,
    *,
    rv_max: float = 100.0,
    min_rv_difference: float = 30.0,
    flux_ratio=(0.2, 1.0),
    vsini=(0.0, 40.0),
    labels=None,
) -> dict:
    """Draw ``n`` binary parameter sets.

    Labels are uniform in the spectral model's box (per component for
    unshared labels, once for shared ones); rv_1 uniform in +-rv_max and
    rv_2 so that ``min_rv_difference <= |rv_1 - rv_2|`` and ``|rv_2| <= rv_max``;
    vsini and flux_ratio uniform in their ranges. Fixed parameters of the
    model's spec keep their fixed values.

    Args:
        binary_model: a :class:`~jaxspec.models.BinaryModel` (its ``spec``
            names the parameters).
        n: number of binaries.
        rng: ``numpy.random.Generator``.
        rv_max, min_rv_difference: velocity ranges [km/s].
        flux_ratio, vsini: (low, high) ranges.
        labels: optional ``{name: (n,) array}`` overriding drawn values
            (e.g. labels of a mock population).

    Returns:
        ``{name: (n,) float64 array}`` for every parameter of the spec.
    """
    spec = binary_model.spec
    out = {}
    for p in spec.params:
        if p.fixed is not None:
            out[p.name] = np.full(n, p.fixed)
        elif p.name.startswith("rv_") or p.name.startswith("vsini_") or p.name == "flux_ratio":
            continue
        else:
            out[p.name] = rng.uniform(p.lower, p.upper, n)
    rv1 = rng.uniform(-rv_max, rv_max, n)
    rv2 = np.empty(n)
    for i in range(n):
        while True:
            v = rng.uniform(-rv_max, rv_max)
            if abs(v - rv1[i]) >= min_rv_difference:
                rv2[i] = v
                break
    for name, val in (("rv_1", rv1), ("rv_2", rv2), ("vsini_1", rng.uniform(*vsini, n)),
                      ("vsini_2", rng.uniform(*vsini, n)), ("flux_ratio", rng.uniform(*flux_ratio, n))):
        if spec[name].fixed is None:
            out[name] = val
    if labels is not None:
        for k, v in labels.items():
            if k not in spec.names:
                raise ValueError(f"unknown parameter {k!r}; parameters are {spec.names}")
            out[k] = np.asarray(v, dtype=np.float64)
    return out


def sloped_continuum(wave, slope: float) -> np.ndarray:
    """The continuum :func:`simulate` multiplies into its spectra: ``1 + slope * (wave - mean) / span``.

    Args:
        wave: (P,) wavelengths [A], sorted.
        slope: fractional change of the continuum across the band (0: flat at 1).

    Returns:
        (P,) float64 continuum, 1 at the mean wavelength.
    """
    wave = np.asarray(wave, dtype=np.float64)
    return 1.0 + slope * (wave - wave.mean()) / (wave[-1] - wave[0])


def simulate(binary_model, params: dict, rng, *, snr: float = 50.0, slope: float = 0.0,
             batch_size: int = 64):
    """Noisy spectra for parameter sets.

    Args:
        binary_model: a :class:`~jaxspec.models.BinaryModel`.
        params: ``{name: (n,) array}`` (as from :func:`draw_binaries`).
        rng: ``numpy.random.Generator`` for the noise.
        snr: signal-to-noise ratio per pixel (err = 1 / snr for unit continuum).
        slope: fractional continuum slope across the band (0: flat continuum 1).
        batch_size: spectra per compiled call.

    Returns:
        ``(flux (n, P), err (n, P), noiseless (n, P))`` numpy float64 arrays.
    """
    spec = binary_model.spec
    n = len(np.asarray(params[spec.names[0]]))
    f = jax.jit(jax.vmap(lambda th: binary_model.flux(th)))
    out = []
    for a in range(0, n, batch_size):
        th = {k: jnp.asarray(np.asarray(params[k])[a:a + batch_size]) for k in spec.names}
        out.append(np.asarray(f(th), dtype=np.float64))
    clean = np.concatenate(out)
    cont = sloped_continuum(binary_model.wave, slope)
    clean = clean * cont
    err = np.broadcast_to(cont / snr, clean.shape).copy()
    return clean + rng.normal(size=clean.shape) * err, err, clean


class BinnedModel:
    """A spectral model averaged over ``bin_pixels`` grid pixels (flux-conserving binning).

    Wraps e.g. a :class:`~jaxspec.LineListGenerator` at 1 km/s so that its spectra land on the
    3 km/s grid of the bundled emulator (as in ``scripts/train_default_emulator.py``): spectra
    simulated with the generator and fitted with the emulator then differ by the emulator's
    own error (template mismatch), not by a different sampling.

    Args:
        model: a spectral model (``label_names``, ``label_bounds``, ``wave``, ``flux``).
        bin_pixels: model pixels per bin (>= 1).
        label_bounds: optional (L, 2) box replacing the model's.
    """

    def __init__(self, model, bin_pixels: int = 3, label_bounds=None):
        if int(bin_pixels) < 1:
            raise ValueError(f"bin_pixels must be >= 1, got {bin_pixels}")
        self.model = model
        self.bin = int(bin_pixels)
        self.label_names = tuple(model.label_names)
        self.label_bounds = np.asarray(model.label_bounds if label_bounds is None else label_bounds,
                                       dtype=np.float64)
        self._n = np.asarray(model.wave).size // self.bin * self.bin
        self.wave = np.exp(np.log(np.asarray(model.wave, np.float64)[:self._n]).reshape(-1, self.bin).mean(-1))

    def flux(self, labels):
        """(n_pix,) binned normalized flux for (L,) labels in ``label_names`` order and units
        (teff [K], logg and feh [dex])."""
        f = self.model.flux(labels)[: self._n]
        return f.reshape(-1, self.bin).mean(-1)


def blaze_continuum(wave, rng, *, degree=(2, 4), slope=(-0.5, 0.5), depth=(0.1, 0.6),
                    level=(200.0, 5000.0)) -> np.ndarray:
    """A raw-count continuum with a blaze: a random polynomial of degree 2-4 times a slope.

    The blaze is ``1 - depth * x**2`` plus random higher-order terms (x in -1..1 across the
    band), times ``1 + slope * x``, times a count ``level``: what an echelle order or a fibre
    spectrum looks like before continuum normalization.

    Args:
        wave: (P,) wavelengths [A], sorted.
        rng: ``numpy.random.Generator``.
        degree, slope, depth, level: (low, high) ranges of the polynomial degree, the
            fractional slope, the blaze's fractional drop at the band edges and the counts.

    Returns:
        (P,) positive continuum in counts.
    """
    wave = np.asarray(wave, np.float64)
    x = 2.0 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1.0
    deg = int(rng.integers(degree[0], degree[1] + 1))
    c = 1.0 - rng.uniform(*depth) * x**2
    for k in range(3, deg + 1):
        c = c + rng.uniform(-0.08, 0.08) * np.polynomial.chebyshev.chebval(x, [0] * k + [1])
    c = c * (1.0 + rng.uniform(*slope) * x)
    return rng.uniform(*level) * np.maximum(c, 0.05)


def stress_population(binary_model, n: int, rng, *, snr=(15.0, 100.0), vsini=(0.0, 100.0),
                      separation=(10.0, 150.0), rv_max=100.0, flux_ratio=(0.1, 1.0),
                      blaze_fraction=0.5, defect_fraction=0.1, batch_size: int = 32) -> dict:
    """Hard binaries for testing the global search of :func:`jaxspec.fit_binary`.

    Labels uniform in the model's box; vsini 0-100 km/s for either star; ``|rv_1 - rv_2|``
    10-150 km/s (rv_1 in +-rv_max); flux ratio 0.1-1; S/N 15-100 (log-uniform); half of the
    spectra in raw counts with a blaze (:func:`blaze_continuum`, Poisson-like errors), the
    others continuum-normalized with a 5 % slope; a tenth with 1-3 cosmic-ray spikes (left
    in the flux, as a user would pass it) or a masked gap (NaN flux over 2-5 A).

    Args:
        binary_model: a :class:`~jaxspec.models.BinaryModel` to simulate with (e.g. over a
            :class:`BinnedModel` of the line-list generator).
        n: number of spectra.
        rng: ``numpy.random.Generator``.
        snr, vsini, separation, flux_ratio: (low, high) ranges; rv_max [km/s].
        blaze_fraction, defect_fraction: fractions with a blaze and with spikes or a gap.
        batch_size: spectra per compiled call.

    Returns:
        dict with ``flux``, ``err`` (n, P) (NaN in gaps), ``truth`` (``{name: (n,)}``),
        ``snr`` (n,), ``blaze`` (n,) bool, ``defect`` (n,) str ('', 'spikes', 'gap') and
        ``continuum`` (n, P).
    """
    spec = binary_model.spec
    wave = np.asarray(binary_model.wave, np.float64)
    truth = {}
    for p in spec.params:
        if p.fixed is not None:
            truth[p.name] = np.full(n, p.fixed)
        elif not (p.name.startswith(("rv_", "vsini_")) or p.name == "flux_ratio"):
            truth[p.name] = rng.uniform(p.lower, p.upper, n)
    rv1 = rng.uniform(-rv_max, rv_max, n)
    sep = rng.uniform(*separation, n) * rng.choice([-1.0, 1.0], n)
    truth.update(rv_1=rv1, rv_2=rv1 + sep, vsini_1=rng.uniform(*vsini, n), vsini_2=rng.uniform(*vsini, n),
                 flux_ratio=rng.uniform(*flux_ratio, n))
    f = jax.jit(jax.vmap(lambda th: binary_model.flux(th)))
    clean = np.concatenate([
        np.asarray(f({k: jnp.asarray(truth[k][a:a + batch_size]) for k in spec.names}), np.float64)
        for a in range(0, n, batch_size)])
    s = np.exp(rng.uniform(np.log(snr[0]), np.log(snr[1]), n))
    blaze = rng.random(n) < blaze_fraction
    flux = np.empty_like(clean)
    err = np.empty_like(clean)
    cont = np.empty_like(clean)
    defect = np.full(n, "", dtype=object)
    for i in range(n):
        if blaze[i]:
            c = blaze_continuum(wave, rng)
            c = c * (s[i] ** 2 / np.median(c))  # counts: S/N = sqrt(counts) at the median
            e = np.sqrt(clean[i] * c)
        else:
            c = sloped_continuum(wave, 0.05)
            e = c / s[i]
        flux[i] = clean[i] * c + rng.normal(size=wave.size) * e
        err[i], cont[i] = e, c
        if rng.random() < defect_fraction:
            if rng.random() < 0.5:
                defect[i] = "spikes"
                for j in rng.integers(0, wave.size, rng.integers(1, 4)):
                    flux[i, j:j + 2] += rng.uniform(5.0, 30.0) * e[j]
            else:
                defect[i] = "gap"
                w0 = rng.uniform(wave[0] + 10, wave[-1] - 10)
                gap = np.abs(wave - w0) < rng.uniform(1.0, 2.5)
                flux[i, gap] = np.nan
    return {"flux": flux, "err": err, "truth": truth, "snr": s, "blaze": blaze, "defect": defect,
            "continuum": cont}
