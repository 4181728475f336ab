"""The main job of the README: synthesize a binary, compare the synthesized Sun with the observed one.

Run it with ``jaxspec demo --out DIR``. It

1. builds the line-list generator on 4950-5350 A (vacuum, the LAMOST-MRS blue
   arm with Mg b) from the built-in calibrated line list;
2. synthesizes a double-lined binary (a G dwarf and a K dwarf with different
   radial velocities and rotation), observed at R = 7500 on a LAMOST-like
   pixel grid with noise at S/N 50, and writes it to ``binary_spectrum.fits``
   (astropy table) and ``binary_spectrum.png``;
3. fits it with ``fit_binary`` and the bundled default emulator, writing
   ``binary_fit.png`` and the fitted parameters into the summary;
4. if the observed solar spectrum is available (``JAXSPEC_SHARED_DATA`` or
   ``../shared/data``), synthesizes the Sun, fits only a velocity shift, and
   writes ``sun_comparison.png`` and the residual rms;
5. writes ``summary.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

__all__ = [
    "run_demo",
    "compare_sun",
    "find_solar_spectrum",
    "load_solar_spectrum",
    "SUN_LABELS",
    "SUN_VSINI",
    "UVES_RESOLUTION",
]

SUN_LABELS = (5772.0, 4.438, 0.0)
#: Resolving power assumed for the UVES solar spectrum (from the widths of its
#: narrowest lines, about 5.5 km/s FWHM including solar broadening).
UVES_RESOLUTION = 110000.0
SUN_VSINI = 1.9  # [km/s]


def find_solar_spectrum() -> Path | None:
    """Path of the observed UVES solar spectrum, or None when the shared data are absent."""
    roots = []
    if os.environ.get("JAXSPEC_SHARED_DATA"):
        roots.append(Path(os.environ["JAXSPEC_SHARED_DATA"]))
    roots += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    for r in roots:
        p = r / "atomic" / "solar_spectrum" / "UVES_Sun-1_cleaned_norm.txt.gz"
        if p.is_file():
            return p
    return None


def load_solar_spectrum(path, wave_min=None, wave_max=None):
    """Read the UVES solar spectrum: (vacuum wavelength [A], normalized flux).

    Wavelengths are converted from air to vacuum (IAU/Morton 2000) and
    duplicated wavelengths where echelle orders join are averaged.
    """
    from jaxspec.physics.airvac import air_to_vacuum

    data = np.loadtxt(path)
    wave = air_to_vacuum(data[:, 0])
    flux = data[:, 1]
    order = np.argsort(wave, kind="stable")
    wave, flux = wave[order], flux[order]
    uniq, inv = np.unique(wave, return_inverse=True)
    flux = np.bincount(inv, weights=flux) / np.bincount(inv)
    wave = uniq
    sel = np.ones(wave.size, bool)
    if wave_min is not None:
        sel &= wave >= wave_min
    if wave_max is not None:
        sel &= wave <= wave_max
    return wave[sel], flux[sel]


def _binary_spectrum(gen, rng, *, snr=50.0, resolution=7500.0):
    import jax.numpy as jnp

    from jaxspec.physics.grid import make_resampler
    from jaxspec.physics.observe import observe

    truth = {
        "teff_1": 5850.0, "logg_1": 4.35, "teff_2": 4700.0, "logg_2": 4.6, "feh": -0.1,
        "rv_1": -38.0, "rv_2": 47.0, "vsini_1": 6.0, "vsini_2": 3.0, "flux_ratio": 0.35,
    }
    f1 = gen.flux(jnp.array([truth["teff_1"], truth["logg_1"], truth["feh"]]))
    f2 = gen.flux(jnp.array([truth["teff_2"], truth["logg_2"], truth["feh"]]))
    # LAMOST-MRS-like pixels: 0.1 A steps inside the model grid.
    wave_obs = np.arange(gen.wave[0] + 10.0, gen.wave[-1] - 10.0, 0.1)
    res = make_resampler(gen.wave, wave_obs)
    dl = float(np.log(gen.wave[1] / gen.wave[0]))
    o1 = observe(f1, dl, res, rv=truth["rv_1"], vsini=truth["vsini_1"], resolution=resolution)
    o2 = observe(f2, dl, res, rv=truth["rv_2"], vsini=truth["vsini_2"], resolution=resolution)
    k = truth["flux_ratio"]
    model = (np.asarray(o1) + k * np.asarray(o2)) / (1.0 + k)
    err = np.full_like(model, 1.0 / snr)
    flux = model + rng.normal(0.0, 1.0, model.size) * err
    return truth, wave_obs, flux, err, model, np.asarray(o1) / (1 + k), k * np.asarray(o2) / (1 + k)


def run_demo(out="jaxspec-demo", *, seed=0, sun=True) -> dict:
    """Run the demo and write its files into ``out``; returns the summary dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxspec import LineListGenerator, __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    gen = LineListGenerator(wave_min=4950.0, wave_max=5350.0)
    summary = {"jaxspec_version": __version__, "generator": repr(gen)}

    truth, wave, flux, err, model, c1, c2 = _binary_spectrum(gen, rng)
    summary["binary_truth"] = truth
    from astropy.table import Table

    Table({"wave": wave, "flux": flux, "err": err}, meta={"COMMENT": "simulated SB2, vacuum A"}).write(
        out / "binary_spectrum.fits", overwrite=True
    )
    fig, ax = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(3, 1))
    ax[0].plot(wave, flux, "k", lw=0.6, label="simulated data (S/N 50, R 7500)")
    ax[0].plot(wave, model, "C3", lw=0.8, label="binary model")
    ax[0].plot(wave, c1 + 1 - c1.max(), "C0", lw=0.6, label="primary contribution (shifted)")
    ax[0].plot(wave, c2 + 0.6, "C2", lw=0.6, label="secondary contribution (shifted)")
    ax[0].legend(loc="lower left", fontsize=8)
    ax[0].set_ylabel("normalized flux")
    ax[1].plot(wave, flux - model, "k", lw=0.5)
    ax[1].set_xlabel("vacuum wavelength [A]")
    ax[1].set_ylabel("data - model")
    ax[0].set_title("jaxspec: simulated double-lined binary (G + K dwarf)")
    fig.tight_layout()
    fig.savefig(out / "binary_spectrum.png", dpi=110)
    plt.close(fig)

    # Fit it with the bundled emulator (trained on the generator that made it).
    from jaxspec.fit.binary import fit_binary

    fit = fit_binary(flux, wave, err=err, resolution=7500.0)
    summary["binary_fit"] = {
        k: (round(v, 4) if isinstance(v, float) else v) for k, v in fit.to_dict().items()
    }
    fit.plot(out / "binary_fit.png")
    print(fit.summary())

    path = find_solar_spectrum() if sun else None
    if path is None:
        summary["sun"] = "skipped: observed solar spectrum not found (set JAXSPEC_SHARED_DATA)"
    else:
        summary["sun"] = compare_sun(gen, path, out / "sun_comparison.png")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def compare_sun(gen, path, plot_path=None, *, wave_min=4955.0, wave_max=5345.0):
    """Synthesize the Sun, fit a velocity shift, return rms numbers (and plot)."""
    import jax.numpy as jnp

    from jaxspec.linelist.calibrate import fit_velocity
    from jaxspec.physics.grid import make_resampler
    from jaxspec.physics.observe import observe

    wave, flux = load_solar_spectrum(path, wave_min, wave_max)
    model = gen.flux(jnp.array(SUN_LABELS))
    rv, _ = fit_velocity(model, gen, wave, flux, vsini=SUN_VSINI, resolution=UVES_RESOLUTION)
    dl = float(np.log(gen.wave[1] / gen.wave[0]))
    m = np.asarray(
        observe(model, dl, make_resampler(gen.wave, wave), rv=rv, vsini=SUN_VSINI,
                resolution=UVES_RESOLUTION)
    )
    resid = m - flux
    inline = flux < 0.95
    result = {
        "rv_shift_kms": round(rv, 3),
        "rms_all": round(float(np.sqrt(np.mean(resid**2))), 4),
        "rms_inline": round(float(np.sqrt(np.mean(resid[inline] ** 2))), 4),
    }
    if plot_path is not None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(2, 1, figsize=(11, 5), sharex=True, height_ratios=(3, 1))
        ax[0].plot(wave, flux, "k", lw=0.5, label="observed Sun (UVES)")
        ax[0].plot(wave, m, "C3", lw=0.5, label="jaxspec line-list generator")
        ax[0].legend(loc="lower left", fontsize=8)
        ax[1].plot(wave, resid, "k", lw=0.3)
        ax[1].set_xlabel("vacuum wavelength [A]")
        ax[0].set_title(f"The Sun: rms {result['rms_all']:.3f} (all), {result['rms_inline']:.3f} (in lines)")
        fig.tight_layout()
        fig.savefig(plot_path, dpi=110)
        plt.close(fig)
    return result
