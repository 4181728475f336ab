"""Synthesize spectra with the line-list generator and plot how they change with the labels.

Builds a :class:`jaxspec.LineListGenerator` from the built-in calibrated line
list, evaluates a jitted, vmapped batch of spectra along a teff sequence, and
writes a plot and an ``.npz`` with the spectra.

Usage: python examples/synthesize_spectra.py [--wave-min 5160] [--wave-max 5190] [--n 5] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxspec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wave-min", type=float, default=5160.0, help="vacuum A")
    ap.add_argument("--wave-max", type=float, default=5190.0, help="vacuum A")
    ap.add_argument("--n", type=int, default=5, help="number of teff values")
    ap.add_argument("--logg", type=float, default=4.5)
    ap.add_argument("--feh", type=float, default=0.0)
    ap.add_argument("--out", default="examples-output")
    args = ap.parse_args(argv)

    gen = jaxspec.LineListGenerator(wave_min=args.wave_min, wave_max=args.wave_max)
    print(gen)
    teff = np.linspace(4500.0, 7000.0, args.n)
    labels = jnp.stack([jnp.asarray(teff), jnp.full(args.n, args.logg), jnp.full(args.n, args.feh)], 1)
    flux = np.asarray(jax.jit(gen.flux_batch)(labels))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "spectra.npz", wave=gen.wave, flux=flux, labels=np.asarray(labels))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    for t, f in zip(teff, flux, strict=True):
        ax.plot(gen.wave, f, lw=0.7, label=f"teff {t:.0f} K")
    ax.set_xlabel("vacuum wavelength [A]")
    ax.set_ylabel("normalized flux")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "spectra.png", dpi=100)
    plt.close(fig)
    print(f"wrote {out / 'spectra.npz'} and {out / 'spectra.png'}")
    return flux


if __name__ == "__main__":
    main()
