"""The convolutional beta-VAE: spectra (N, P) -> Gaussian latents (N, latent_dim) -> spectra.

Encoder: the flux, less a per-pixel offset (the training set's mean spectrum) and over one
global scale, is padded at its edges to a multiple of the downsampling factor (the product of
the layers' strides, 32 by default), then goes through strided 1-D convolutions (a stride-4
stem, then stride 2: on a CPU, XLA's convolutions at full resolution are what costs, so the
first layer downsamples most), a dense hidden layer and two dense heads, the means and
log-variances of ``latent_dim`` diagonal Gaussians. Decoder: a dense layer back to the
coarsest feature map, transposed convolutions mirroring the encoder up to the padded pixel
count, cropped to ``n_pix`` and mapped back to flux
by the same offset and scale. The offset and scale are :class:`Buffer` variables: saved with
the network, not trained.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["BetaVAE", "Buffer", "decode", "encode", "traversal"]


class Buffer(nnx.Variable):
    """A non-trainable array of a :class:`BetaVAE` (the flux offset and scale): saved, not optimized.

    Built like any ``nnx.Variable``, ``Buffer(value)``; ``*args`` and ``**kwargs`` go to it.
    """


class BetaVAE(nnx.Module):
    """A 1-D convolutional variational autoencoder of continuum-normalized spectra.

    Args:
        n_pix: pixels P of the spectra it encodes.
        latent_dim: number of latent Gaussians.
        channels: feature channels of the strided convolutions, one entry per layer (the
            decoder's transposed convolutions mirror them).
        strides: downsampling factor of each layer; their product is the factor the pixel
            count is padded to a multiple of (default 4 * 2 * 2 * 2 = 32).
        kernel_sizes: kernel width of each encoder layer [pixels].
        decoder_kernel: kernel width of the decoder's sub-pixel convolutions [coarse pixels].
        hidden: width of the dense layer between the convolutions and the latent heads.
        seed: seed of the random initialization.

    Calling the module on an (N, P) batch of normalized flux returns ``(mu, logvar)``, each
    (N, latent_dim); :meth:`decode` maps (N, latent_dim) latents to (N, P) normalized flux.
    :attr:`config` holds the arguments (what :func:`jaxspec.latent.save_vae` stores).

    Raises:
        ValueError: ``n_pix`` too small for the downsampling, or non-positive sizes.
    """

    def __init__(self, n_pix: int, latent_dim: int = 8, *, channels=(16, 32, 64, 64), strides=(4, 2, 2, 2),
                 kernel_sizes=(8, 5, 5, 5), decoder_kernel: int = 3, hidden: int = 256, seed: int = 0):
        channels = tuple(int(c) for c in channels)
        strides = tuple(int(s) for s in strides)
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        n_pix, latent_dim, hidden, decoder_kernel = int(n_pix), int(latent_dim), int(hidden), int(decoder_kernel)
        if not len(channels) == len(strides) == len(kernel_sizes) >= 1:
            raise ValueError(f"channels, strides and kernel_sizes need one entry per layer (as many of "
                             f"each, at least one); got {channels}, {strides}, {kernel_sizes}")
        if latent_dim < 1 or hidden < 1 or min(channels + strides + kernel_sizes + (decoder_kernel,)) < 1:
            raise ValueError(f"latent_dim, hidden, channels, strides and kernel_sizes must be positive; got "
                             f"latent_dim={latent_dim}, hidden={hidden}, channels={channels}, "
                             f"strides={strides}, kernel_sizes={kernel_sizes}")
        factor = int(np.prod(strides))
        if n_pix < factor:
            raise ValueError(f"n_pix = {n_pix} is smaller than the downsampling factor {factor} "
                             f"(the product of strides); use fewer layers or more pixels")
        self.config = dict(n_pix=n_pix, latent_dim=latent_dim, channels=list(channels),
                           strides=list(strides), kernel_sizes=list(kernel_sizes), decoder_kernel=decoder_kernel,
                           hidden=hidden)
        self.n_pix = n_pix
        self.latent_dim = latent_dim
        self.n_padded = -(-n_pix // factor) * factor
        self.n_low = self.n_padded // factor
        rngs = nnx.Rngs(int(seed))
        ins = (1,) + channels[:-1]
        self.enc = nnx.List([nnx.Conv(a, b, (k,), strides=s, padding="SAME", rngs=rngs)
                             for a, b, s, k in zip(ins, channels, strides, kernel_sizes, strict=True)])
        self.enc_hidden = nnx.Linear(self.n_low * channels[-1], hidden, rngs=rngs)
        self.mu_head = nnx.Linear(hidden, latent_dim, rngs=rngs)
        self.logvar_head = nnx.Linear(hidden, latent_dim, rngs=rngs, kernel_init=nnx.initializers.zeros)
        self.dec_hidden = nnx.Linear(latent_dim, hidden, rngs=rngs)
        self.dec_low = nnx.Linear(hidden, self.n_low * channels[-1], rngs=rngs)
        # Mirror of the encoder, upsampling by sub-pixel convolutions (a stride-1 convolution to
        # s * c_out channels, reshaped to s times the length): the same map as a transposed
        # convolution, but its weight gradient is 5-10x cheaper on a CPU. The last layer (to one
        # channel, no activation) undoes the first.
        self.up = tuple(strides[::-1])
        self.dec = nnx.List([nnx.Conv(a, b * s, (decoder_kernel,), padding="SAME", rngs=rngs)
                             for a, b, s in zip(channels[::-1], ins[::-1], self.up, strict=True)])
        self.offset = Buffer(jnp.ones(n_pix, jnp.float32))
        self.scale = Buffer(jnp.ones((), jnp.float32))

    def __call__(self, flux):
        """Latent means and log-variances of normalized spectra.

        Args:
            flux: (N, P) continuum-normalized flux (finite; fill masked pixels first, as
                :func:`jaxspec.latent.prepare_flux` does).

        Returns:
            ``(mu, logvar)``, each (N, latent_dim).
        """
        x = (flux - self.offset[...]) / self.scale[...]
        pad = self.n_padded - self.n_pix
        x = jnp.pad(x, ((0, 0), (pad // 2, pad - pad // 2)), mode="edge")[..., None]
        for conv in self.enc:
            x = jax.nn.silu(conv(x))
        h = jax.nn.silu(self.enc_hidden(x.reshape(x.shape[0], -1)))
        return self.mu_head(h), jnp.clip(self.logvar_head(h), -20.0, 10.0)

    def decode(self, z):
        """Normalized flux of latent vectors.

        Args:
            z: (N, latent_dim) latent vectors.

        Returns:
            (N, P) continuum-normalized flux.
        """
        h = jax.nn.silu(self.dec_hidden(z))
        x = jax.nn.silu(self.dec_low(h)).reshape(z.shape[0], self.n_low, -1)
        for i, (conv, s) in enumerate(zip(self.dec, self.up, strict=True)):
            x = conv(x)
            x = x.reshape(x.shape[0], x.shape[1] * s, -1)
            if i < len(self.up) - 1:
                x = jax.nn.silu(x)
        x = x[..., 0]
        pad = self.n_padded - self.n_pix
        x = x[:, pad // 2: pad // 2 + self.n_pix]
        return self.offset[...] + self.scale[...] * x


def _batched(fn, x, batch_size):
    out = [fn(jnp.asarray(x[a:a + batch_size])) for a in range(0, x.shape[0], batch_size)]
    return out


def _check_flux(vae: BetaVAE, flux, what="flux") -> np.ndarray:
    flux = np.asarray(flux, dtype=np.float32)
    if flux.ndim == 1:
        flux = flux[None]
    if flux.ndim != 2 or flux.shape[1] != vae.n_pix:
        raise ValueError(f"{what} must be (N, P) with P = {vae.n_pix} pixels (the VAE's), got shape "
                         f"{np.shape(flux)}")
    bad = ~np.isfinite(flux)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(f"{what} has {int(bad.sum())} NaN or infinite pixels (in spectra "
                         f"{rows[:5].tolist()}{'...' if rows.size > 5 else ''}); mask them first with "
                         f"jaxspec.latent.prepare_flux, which fills masked pixels")
    return flux


def encode(vae: BetaVAE, flux, *, batch_size: int = 1024):
    """Posterior means and log-variances of spectra.

    Args:
        vae: a trained :class:`BetaVAE`.
        flux: (N, P) or (P,) continuum-normalized flux on the VAE's pixels, finite (masked
            pixels filled, as :func:`jaxspec.latent.prepare_flux` returns them).
        batch_size: spectra per compiled call.

    Returns:
        ``(mu, logvar)``: numpy float32 arrays, each (N, latent_dim).

    Raises:
        ValueError: a pixel count other than the VAE's, or NaN/infinite flux.
    """
    flux = _check_flux(vae, flux)
    graphdef, state = nnx.split(vae)
    fn = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
    parts = _batched(lambda x: fn(state, x), flux, int(batch_size))
    mu = np.concatenate([np.asarray(m) for m, _ in parts])
    logvar = np.concatenate([np.asarray(v) for _, v in parts])
    return mu, logvar


def decode(vae: BetaVAE, z, *, batch_size: int = 1024) -> np.ndarray:
    """Spectra of latent vectors.

    Args:
        vae: a :class:`BetaVAE`.
        z: (N, latent_dim) or (latent_dim,) latent vectors.
        batch_size: vectors per compiled call.

    Returns:
        (N, P) numpy float32 continuum-normalized flux.

    Raises:
        ValueError: a latent size other than the VAE's, or non-finite values.
    """
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != vae.latent_dim:
        raise ValueError(f"z must be (N, latent_dim) with latent_dim = {vae.latent_dim}, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("z has NaN or infinite values")
    graphdef, state = nnx.split(vae)
    fn = jax.jit(lambda s, x: nnx.merge(graphdef, s).decode(x))
    return np.concatenate([np.asarray(x) for x in _batched(lambda x: fn(state, x), z, int(batch_size))])


def traversal(vae: BetaVAE, dim: int, values, base=None) -> np.ndarray:
    """Spectra decoded along one latent dimension, the others held at ``base``.

    Args:
        vae: a :class:`BetaVAE`.
        dim: the latent dimension swept (0 .. latent_dim - 1).
        values: (K,) values given to that dimension (e.g. ``np.linspace(-2, 2, 5)``, in units
            of the unit-Gaussian prior).
        base: (latent_dim,) latent vector of the other dimensions (default zeros, the prior's
            mean; the mean ``mu`` of a data set is a common choice too).

    Returns:
        (K, P) continuum-normalized flux, one spectrum per value.

    Raises:
        ValueError: ``dim`` out of range or a ``base`` of the wrong size.
    """
    d = vae.latent_dim
    if not 0 <= int(dim) < d:
        raise ValueError(f"dim must be in 0..{d - 1}, got {dim}")
    base = np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32)
    if base.shape != (d,):
        raise ValueError(f"base must have shape ({d},), got {base.shape}")
    values = np.atleast_1d(np.asarray(values, np.float32))
    z = np.repeat(base[None], values.size, axis=0)
    z[:, int(dim)] = values
    return decode(vae, z)
