"""Latent traversal figures (matplotlib, imported inside the function)."""

from __future__ import annotations

import numpy as np

from jaxspec.latent.vae import BetaVAE, traversal

__all__ = ["plot_traversal"]


def plot_traversal(vae: BetaVAE, wave, dims, *, values=(-2.0, -1.0, 0.0, 1.0, 2.0), base=None,
                   window=None, titles=None, path=None):
    """One panel per latent dimension: spectra decoded as that dimension is swept.

    Args:
        vae: a :class:`~jaxspec.latent.BetaVAE`.
        wave: (P,) vacuum wavelengths [A] of the VAE's pixels.
        dims: latent dimensions to show (one panel each).
        values: (K,) values given to the swept dimension (prior units).
        base: (latent_dim,) latent vector of the other dimensions (default zeros).
        window: optional (low, high) wavelength range to show [A] (default all).
        titles: optional panel titles, one per entry of ``dims`` (e.g. the label a dimension
            tracks).
        path: if given, the figure is saved there (PNG, 120 dpi).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: ``wave`` of the wrong length, or titles not one per dimension.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    wave = np.asarray(wave, dtype=np.float64)
    if wave.shape != (vae.n_pix,):
        raise ValueError(f"wave has shape {wave.shape}; the VAE has {vae.n_pix} pixels")
    dims = [int(d) for d in np.atleast_1d(dims)]
    if titles is not None and len(titles) != len(dims):
        raise ValueError(f"give one title per dimension ({len(dims)}), got {len(titles)}")
    sel = np.ones(wave.size, bool) if window is None else (wave >= window[0]) & (wave <= window[1])
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    fig, axes = plt.subplots(len(dims), 1, figsize=(9, 2.2 * len(dims) + 0.4), sharex=True, squeeze=False)
    cmap = plt.get_cmap("coolwarm")
    for ax, d, i in zip(axes[:, 0], dims, range(len(dims)), strict=True):
        spectra = traversal(vae, d, values, base)
        for j, (v, s) in enumerate(zip(values, spectra, strict=True)):
            ax.plot(wave[sel], s[sel], lw=0.8, color=cmap(j / max(len(values) - 1, 1)), label=f"z{d} = {v:+.1f}")
        ax.set_ylabel("flux")
        ax.set_title(titles[i] if titles is not None else f"latent dimension {d}", fontsize=9)
        ax.legend(fontsize=6, ncol=len(values), loc="lower left")
    axes[-1, 0].set_xlabel("vacuum wavelength [A]")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
