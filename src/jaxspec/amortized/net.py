"""The amortized network: one observed spectrum (n_pix,) -> both stars' parameters in one pass.

A 1-D convolutional network (Flax NNX): four strided convolutions (SiLU), two dense
layers, and a head with a Gaussian mean and log standard deviation per target plus one
logit for "binary". Targets are scaled to about unit range (:data:`TARGETS` and the
ranges stored with the network). Star 2 is the fainter star (``share``, its share of the
light, lies in 0-0.5); the training loss is indifferent to the order of the two stars.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["TARGETS", "AmortizedNet", "order_free_nll", "swap_stars"]

#: Targets the network predicts, in the order of its outputs: per star teff [K], logg [dex],
#: rv and vsini [km/s]; the shared [Fe/H] [dex]; ``share``, star 2's share of the light
#: (``flux_ratio / (1 + flux_ratio)``, 0 for a single star).
TARGETS = ("teff_1", "logg_1", "rv_1", "vsini_1", "teff_2", "logg_2", "rv_2", "vsini_2", "feh", "share")
_STAR1 = np.arange(0, 4)
_STAR2 = np.arange(4, 8)


class AmortizedNet(nnx.Module):
    """1-D CNN: (n_pix,) normalized flux minus 1 -> (mean (T,), log sigma (T,), binary logit).

    Args:
        n_pix: input pixels (the network's grid).
        channels: output channels of the four stride-2 convolutions.
        kernel: convolution kernel size [pixels].
        hidden: width of the two dense layers.
        n_targets: number of Gaussian targets (``len(TARGETS)``).
        rngs: ``nnx.Rngs`` for the initial weights.
    """

    def __init__(self, n_pix: int, *, channels=(8, 16, 32, 32), kernel: int = 5, hidden: int = 256,
                 n_targets: int = len(TARGETS), rngs: nnx.Rngs):
        self.n_pix = int(n_pix)
        self.architecture = {"n_pix": int(n_pix), "channels": [int(c) for c in channels],
                             "kernel": int(kernel), "hidden": int(hidden), "n_targets": int(n_targets)}
        chans = (1,) + tuple(int(c) for c in channels)
        self.convs = nnx.List([nnx.Conv(a, b, (int(kernel),), strides=(2,), padding="SAME", rngs=rngs)
                               for a, b in zip(chans[:-1], chans[1:], strict=True)])
        length = int(n_pix)
        for _ in channels:
            length = -(-length // 2)
        self.dense1 = nnx.Linear(length * chans[-1], int(hidden), rngs=rngs)
        self.dense2 = nnx.Linear(int(hidden), int(hidden), rngs=rngs)
        self.head = nnx.Linear(int(hidden), 2 * int(n_targets) + 1, rngs=rngs)
        self.n_targets = int(n_targets)

    def features(self, x):
        """The penultimate layer: (B, hidden) activations for inputs ``x`` (B, n_pix), normalized flux minus 1
        (the embedding of a survey map)."""
        h = x[..., None]
        for conv in self.convs:
            h = jax.nn.silu(conv(h))
        h = h.reshape(h.shape[0], -1)
        return jax.nn.silu(self.dense2(jax.nn.silu(self.dense1(h))))

    def __call__(self, x):
        """Outputs for one spectrum (n_pix,) or a batch (B, n_pix).

        Args:
            x: normalized flux minus 1, (n_pix,) or (B, n_pix).

        Returns:
            ``(mean, log_sigma, logit)``: (..., T), (..., T) scaled targets and (...,) the
            binary logit.
        """
        single = x.ndim == 1
        out = self.head(self.features(x[None] if single else x))
        t = self.n_targets
        mean, log_sigma, logit = out[:, :t], jnp.clip(out[:, t:2 * t], -7.0, 3.0), out[:, 2 * t]
        if single:
            return mean[0], log_sigma[0], logit[0]
        return mean, log_sigma, logit


def swap_stars(y):
    """Physical targets (..., T) in :data:`TARGETS` order with the two stars exchanged.

    The star blocks trade places and ``share`` (star 2's share of the light) becomes
    ``1 - share``.

    Args:
        y: (..., T) targets (teff [K], logg [dex], rv and vsini [km/s], feh [dex], share).

    Returns:
        (..., T) numpy array.
    """
    y = np.asarray(y)
    idx = np.arange(y.shape[-1])
    idx[_STAR1], idx[_STAR2] = _STAR2, _STAR1
    out = y[..., idx].copy()
    out[..., -1] = 1.0 - y[..., -1]
    return out


def order_free_nll(mean, log_sigma, y, y_swapped, binary):
    """Gaussian negative log likelihood, the smaller of the two star orderings for binaries.

    Args:
        mean, log_sigma: (B, T) network outputs (scaled targets).
        y, y_swapped: (B, T) scaled targets and the same with the stars exchanged.
        binary: (B,) 1 for binaries, 0 for single stars (whose star-2 terms are left out).

    Returns:
        (B,) negative log likelihood per spectrum.
    """
    w = jnp.ones(mean.shape[-1]).at[_STAR2].set(0.0)
    w = jnp.where(binary[:, None] > 0.5, 1.0, w[None, :])

    def nll(target):
        z = (target - mean) * jnp.exp(-log_sigma)
        return jnp.sum(w * (0.5 * z * z + log_sigma), axis=-1)

    direct = nll(y)
    swapped = jnp.where(binary > 0.5, nll(y_swapped), jnp.inf)
    return jnp.minimum(direct, swapped)
