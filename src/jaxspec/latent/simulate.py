"""Single-star training spectra with known labels, through the package's own physics.

:func:`simulate_spectra` draws teff, logg and [Fe/H] uniformly in the spectral model's label
box (the bundled :func:`jaxspec.default_model` by default: 4000-7500 K, 1-5 dex, -2 to
0.5 dex), rv and vsini uniformly in their ranges, and evaluates a single-star
:class:`~jaxspec.models.BinaryModel` (``flux_ratio`` fixed at 0, which skips the secondary):
rotation, the instrument's Gaussian LSF at one resolving power, the Doppler shift. The flux is
then averaged over ``bin_pixels`` model pixels (the bundled model's 3 km/s pixels become
12 km/s at the default 4, 3.3 pixels per FWHM at R = 7,500) and Gaussian noise at the given
S/N per binned pixel is added.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["simulate_spectra"]


def simulate_spectra(n: int, rng, *, model=None, snr: float | None = 100.0, resolution: float = 7500.0,
                     rv=(-100.0, 100.0), vsini=(0.0, 50.0), bin_pixels: int = 4, batch_size: int = 256):
    """Noisy single-star spectra with random labels, velocities and rotation.

    Args:
        n: number of spectra.
        rng: ``numpy.random.Generator`` for the labels and the noise.
        model: spectral model (``label_names``, ``label_bounds``, ``wave``, ``flux``); default
            the bundled :func:`jaxspec.default_model` (4950-5350 A).
        snr: signal-to-noise ratio per binned pixel (err = 1 / snr); None for noiseless.
        resolution: resolving power R = lambda / delta-lambda (FWHM) of the Gaussian LSF.
        rv: (low, high) range of the radial velocity [km/s], positive = receding.
        vsini: (low, high) range of the projected rotation [km/s].
        bin_pixels: model pixels averaged into one output pixel (1: the model's grid).
        batch_size: spectra per compiled call.

    Returns:
        ``(flux, wave, labels)``: (n, P) float32 continuum-normalized flux, (P,) float64
        vacuum wavelengths [A] (the mean ln(lambda) of each bin) and ``{name: (n,) float64}``
        for the model's labels (teff [K], logg [dex], feh [dex] for the bundled model) and
        ``rv``, ``vsini`` [km/s]. The grid leaves out the model's edge pixels that the
        largest shift would pull in from outside it.

    Raises:
        ValueError: bad sizes or ranges.
    """
    from jaxspec.models import BinaryModel
    from jaxspec.physics.constants import C_KMS

    if int(n) < 1 or int(bin_pixels) < 1 or resolution <= 0 or (snr is not None and snr <= 0):
        raise ValueError(f"need n >= 1, bin_pixels >= 1, resolution > 0 and snr > 0 (or None); "
                         f"got {n}, {bin_pixels}, {resolution}, {snr}")
    if not rv[0] <= rv[1] or not 0 <= vsini[0] <= vsini[1]:
        raise ValueError(f"need rv = (low, high) with low <= high and 0 <= vsini low <= high; got {rv}, {vsini}")
    if model is None:
        from jaxspec import default_model

        model = default_model()
    n, b = int(n), int(bin_pixels)
    mw = np.asarray(model.wave, dtype=np.float64)
    vmax = max(abs(rv[0]), abs(rv[1]))
    # keep pixels that no shift (nor the edge of the LSF and rotation kernels) pulls from outside the grid
    dln = np.log(mw[1] / mw[0])
    edge = int(np.ceil((vmax + vsini[1] + 3 * C_KMS / resolution) / C_KMS / dln)) + 2
    keep = (mw.size - 2 * edge) // b * b
    if keep < b:
        raise ValueError(f"the model's {mw.size} pixels leave nothing after the {edge}-pixel edges")
    obs = mw[edge:edge + keep]
    bm = BinaryModel(model, obs, resolution=float(resolution), fixed={"flux_ratio": 0.0, "vsini_2": 0.0},
                     rv_max=float(vmax) + 1.0, vsini_max=float(max(vsini[1], 1.0)))
    bounds = np.asarray(model.label_bounds, dtype=np.float64)
    labels = {name: rng.uniform(lo, hi, n) for name, (lo, hi) in zip(model.label_names, bounds, strict=True)}
    labels["rv"] = rng.uniform(rv[0], rv[1], n)
    labels["vsini"] = rng.uniform(vsini[0], vsini[1], n)
    theta = {}
    for name in bm.spec.names:
        if bm.spec[name].fixed is not None:
            theta[name] = np.full(n, bm.spec[name].fixed)
        elif name in labels:  # shared labels (feh)
            theta[name] = labels[name]
        elif name.endswith(("_1", "_2")) and name[:-2] in labels:
            theta[name] = labels[name[:-2]]
        elif name == "rv_1":
            theta[name] = labels["rv"]
        elif name == "vsini_1":
            theta[name] = labels["vsini"]
        elif name == "rv_2":
            theta[name] = labels["rv"]
        else:
            raise ValueError(f"simulate_spectra does not know how to set parameter {name!r}")
    f = jax.jit(jax.vmap(bm.flux))
    bs = int(batch_size)
    out = np.empty((n, keep // b), np.float32)
    for a in range(0, n, bs):
        th = {k: jnp.asarray(v[a:a + bs]) for k, v in theta.items()}
        if th["rv_1"].shape[0] < bs:  # pad the last batch: one compiled shape
            th = {k: jnp.pad(v, (0, bs - v.shape[0]), mode="edge") for k, v in th.items()}
        flux = np.asarray(f(th), np.float64)[: min(bs, n - a)]
        out[a:a + bs] = flux.reshape(flux.shape[0], -1, b).mean(-1)
    if snr is not None:
        out += (rng.standard_normal(out.shape) / snr).astype(np.float32)
    wave = np.exp(np.log(obs).reshape(-1, b).mean(-1))
    return out, wave, labels
