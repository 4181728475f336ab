"""Self-supervised latent discovery: a convolutional beta-VAE of spectra and what its latents hold.

* :class:`BetaVAE` (Flax NNX): strided 1-D convolutions -> ``latent_dim`` Gaussians ->
  sub-pixel convolutions back to the pixels (:mod:`jaxspec.latent.vae`).
* :func:`train_vae` (optax) on (N, P) arrays, :func:`train_vae_on_stack` on the HDF5 stack of
  ``jaxspec pack``; :func:`prepare_flux` masks NaN/inf and ivar-0 pixels and normalizes.
* :func:`encode`, :func:`decode`, :func:`traversal`, :func:`plot_traversal`.
* :func:`latent_dispersion`, :func:`kl_per_dim`, :func:`informative_dims` (threshold
  :data:`ACTIVE_THRESHOLD`), :func:`mutual_information` (KSG estimator, nats),
  :func:`spearman`, :func:`latent_summary`.
* :func:`save_vae`, :func:`load_vae`, :func:`vae_info`: HDF5 files with a format version
  (:data:`VAE_VERSION`), checked on load.
* :func:`simulate_spectra`: single-star training spectra from the bundled model with random
  labels, rv and vsini.

Example::

    import numpy as np
    from jaxspec import latent

    flux, wave, labels = latent.simulate_spectra(20_000, np.random.default_rng(0))
    vae, report = latent.train_vae(flux, latent_dim=8, beta=4.0, steps=4000)
    mu, logvar = latent.encode(vae, flux)
    summary = latent.latent_summary(mu, labels, logvar=logvar)
"""

from jaxspec.latent.io import VAE_FORMAT, VAE_VERSION, load_vae, save_vae, vae_info
from jaxspec.latent.measure import (
    ACTIVE_THRESHOLD,
    informative_dims,
    kl_per_dim,
    latent_dispersion,
    latent_summary,
    mutual_information,
    spearman,
)
from jaxspec.latent.plot import plot_traversal
from jaxspec.latent.simulate import simulate_spectra
from jaxspec.latent.train import TrainReport, load_stack_flux, prepare_flux, train_vae, train_vae_on_stack
from jaxspec.latent.vae import BetaVAE, Buffer, decode, encode, traversal

__all__ = [
    "ACTIVE_THRESHOLD",
    "VAE_FORMAT",
    "VAE_VERSION",
    "BetaVAE",
    "Buffer",
    "TrainReport",
    "decode",
    "encode",
    "informative_dims",
    "kl_per_dim",
    "latent_dispersion",
    "latent_summary",
    "load_stack_flux",
    "load_vae",
    "mutual_information",
    "plot_traversal",
    "prepare_flux",
    "save_vae",
    "simulate_spectra",
    "spearman",
    "train_vae",
    "train_vae_on_stack",
    "traversal",
    "vae_info",
]
