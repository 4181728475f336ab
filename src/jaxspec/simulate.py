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

__all__ = ["draw_binaries", "simulate", "sloped_continuum"]


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
