"""Training a :class:`~jaxspec.latent.BetaVAE` with optax, on arrays or on an HDF5 survey stack.

The loss per spectrum is the beta-VAE objective (Higgins et al. 2017) with a Gaussian
likelihood of fixed width ``sigma``::

    loss = sum_p m_p (flux_p - decoded_p)^2 / (2 sigma^2) + beta * sum_j KL(q(z_j | flux) || N(0, 1))

(m_p = 0 at masked pixels). With ``sigma`` the noise of the data and ``beta = 1`` it is the
negative evidence lower bound; a larger ``beta`` trades reconstruction for a latent code closer
to the factorized prior, which is what makes single dimensions follow single labels. The
weight of the KL term ramps linearly from 0 to ``beta`` over the first ``kl_warmup`` of the
steps (so the encoder learns to use the latents before the prior pulls them in).

Training data live on the device; the compiled step gathers a random mini-batch of fixed
shape from them, so it compiles once. (Not a ``lax.scan`` over steps: XLA's CPU convolutions
inside a loop ran 10x slower than the same step called from Python.)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxspec.latent.vae import BetaVAE, decode, encode

__all__ = ["TrainReport", "load_stack_flux", "prepare_flux", "train_vae", "train_vae_on_stack"]

_CHUNK = 50  # steps per compiled call (one history entry each)


@dataclasses.dataclass(frozen=True)
class TrainReport:
    """What :func:`train_vae` measured.

    Attributes:
        latent_dim: number of latent dimensions.
        beta: weight of the KL term.
        sigma: width of the Gaussian likelihood [normalized flux].
        steps: optimizer steps taken.
        batch_size: spectra per step.
        n_train: spectra trained on; n_val: spectra held out.
        train_rms: rms of flux - decoded posterior mean over the unmasked pixels of (up to
            5,000 of) the training spectra [normalized flux].
        val_rms: the same on the held-out spectra (NaN without any).
        mean_rms: rms of flux - the training set's mean spectrum on the held-out spectra
            (the training spectra without any): the bar a useful code must beat.
        kl_per_dim: (latent_dim,) mean KL of each dimension [nats] on the held-out (else
            training) spectra.
        history: one dict per ``50`` steps: ``step``, ``loss`` (per spectrum), ``recon`` (the
            reconstruction term), ``kl`` (summed over dimensions, [nats]), ``beta`` (the
            warm-up weight).
        seconds: wall time of the training loop (first compilation included) [s].
        compile_seconds: time of the first step (its compilation) [s].
    """

    latent_dim: int
    beta: float
    sigma: float
    steps: int
    batch_size: int
    n_train: int
    n_val: int
    train_rms: float
    val_rms: float
    mean_rms: float
    kl_per_dim: np.ndarray
    history: tuple
    seconds: float
    compile_seconds: float

    def to_dict(self) -> dict:
        """The report as JSON-ready Python types (arrays become lists)."""
        d = dataclasses.asdict(self)
        d["kl_per_dim"] = [float(x) for x in self.kl_per_dim]
        d["history"] = [dict(h) for h in self.history]
        return d


def prepare_flux(flux, *, ivar=None, err=None, mask=None, normalize: bool = False):
    """Masked, optionally median-normalized flux ready for :func:`encode` and :func:`train_vae`.

    A pixel is masked where the flux is NaN or infinite, where ``ivar`` is 0 or not finite,
    where ``err`` is not finite or not positive, or where ``mask`` is False. Masked pixels are
    filled with 1 (the continuum) and left out of the training loss.

    Args:
        flux: (N, P) or (P,) flux: continuum-normalized, or in any units with
            ``normalize=True``.
        ivar: optional (N, P) inverse variance [1/flux^2].
        err: optional (N, P) 1-sigma errors [flux units].
        mask: optional (N, P) bool, True for good pixels.
        normalize: divide each spectrum by the median of its good pixels.

    Returns:
        ``(flux, good)``: (N, P) float32 flux (masked pixels at 1) and (N, P) bool mask.

    Raises:
        ValueError: a shape mismatch, a spectrum with no good pixel, or (with ``normalize``)
            a non-positive median; the message names the spectra.
    """
    flux = np.asarray(flux, dtype=np.float64)
    if flux.ndim == 1:
        flux = flux[None]
    if flux.ndim != 2:
        raise ValueError(f"flux must be (N, P), got shape {flux.shape}")
    good = np.isfinite(flux)
    for name, arr in (("ivar", ivar), ("err", err), ("mask", mask)):
        if arr is None:
            continue
        arr = np.asarray(arr)
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.shape != flux.shape:
            raise ValueError(f"{name} has shape {arr.shape} but flux has {flux.shape}")
        if name == "ivar":
            good &= np.isfinite(arr) & (arr > 0)
        elif name == "err":
            good &= np.isfinite(arr) & (arr > 0)
        else:
            good &= arr.astype(bool)
    empty = np.flatnonzero(~good.any(axis=1))
    if empty.size:
        raise ValueError(f"spectra {empty[:10].tolist()}{'...' if empty.size > 10 else ''} have no good pixel "
                         f"(all NaN/inf flux, ivar 0 or masked)")
    out = np.where(good, flux, np.nan)
    if normalize:
        med = np.nanmedian(out, axis=1)
        bad = np.flatnonzero(~(med > 0))
        if bad.size:
            raise ValueError(f"spectra {bad[:10].tolist()} have a non-positive median flux; cannot normalize")
        out = out / med[:, None]
    return np.where(good, out, 1.0).astype(np.float32), good


def _loss_fn(graphdef, rest, sigma, masked):
    inv2s2 = 0.5 / float(sigma) ** 2

    def loss(params, x, m, key, beta):
        vae = nnx.merge(graphdef, params, rest)
        mu, logvar = vae(x)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)
        r = vae.decode(z) - x
        sq = r * r * m if masked else r * r
        recon = jnp.mean(jnp.sum(sq, axis=-1)) * inv2s2
        kl = jnp.mean(jnp.sum(0.5 * (mu * mu + jnp.exp(logvar) - logvar - 1.0), axis=-1))
        return (recon + beta * kl) / x.shape[-1], (recon, kl)

    return loss


def _rms(vae, flux, good):
    mu, _ = encode(vae, flux)
    r = decode(vae, mu) - flux
    return float(np.sqrt(np.sum(r * r * good) / max(int(good.sum()), 1)))


def train_vae(flux, *, latent_dim: int = 8, beta: float = 4.0, sigma: float = 0.01, steps: int = 3000,
              batch_size: int = 64, learning_rate: float = 2e-3, seed: int = 0, mask=None,
              val_fraction: float = 0.1, kl_warmup: float = 0.2, model_kwargs=None, progress: bool = False):
    """Train a :class:`~jaxspec.latent.BetaVAE` on spectra.

    Args:
        flux: (N, P) continuum-normalized flux, finite (see :func:`prepare_flux`).
        latent_dim: number of latent dimensions.
        beta: weight of the KL term (1: the evidence lower bound with noise ``sigma``).
        sigma: width of the Gaussian likelihood [normalized flux]; the trade-off between
            reconstruction and the prior depends on ``beta * sigma**2``.
        steps: optimizer steps (rounded up to a multiple of 50).
        batch_size: spectra per step (fixed, so the step compiles once).
        learning_rate: peak Adam learning rate (cosine decay to 5 % of it).
        seed: seed of the initialization, the split and the mini-batches.
        mask: optional (N, P) bool, True for pixels that enter the loss.
        val_fraction: fraction of the spectra held out for the validation rms.
        kl_warmup: fraction of the steps over which the KL weight ramps from 0 to ``beta``.
        model_kwargs: extra :class:`~jaxspec.latent.BetaVAE` arguments (``channels``, ``strides``,
            ``kernel_sizes``, ``decoder_kernel``, ``hidden``).
        progress: print the loss every 50 steps.

    Returns:
        ``(vae, report)``: the trained :class:`~jaxspec.latent.BetaVAE` and a :class:`TrainReport`.

    Raises:
        ValueError: flux not (N, P) or not finite, a mask of another shape, fewer than 2
            spectra, or bad sizes.
    """
    flux = np.asarray(flux, dtype=np.float32)
    if flux.ndim != 2:
        raise ValueError(f"flux must be (N, P), got shape {flux.shape}")
    if not np.isfinite(flux).all():
        raise ValueError("flux has NaN or infinite pixels; pass it through jaxspec.latent.prepare_flux "
                         "(which masks and fills them) and give its mask as mask=")
    n, p = flux.shape
    if n < 2:
        raise ValueError(f"need at least 2 spectra to train, got {n}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != flux.shape:
            raise ValueError(f"mask has shape {mask.shape} but flux has {flux.shape}")
    if not 0.0 <= val_fraction < 1.0 or steps < 1 or batch_size < 1 or sigma <= 0 or beta < 0:
        raise ValueError(f"need 0 <= val_fraction < 1, steps >= 1, batch_size >= 1, sigma > 0, beta >= 0; "
                         f"got {val_fraction}, {steps}, {batch_size}, {sigma}, {beta}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(val_fraction * n)) if n > 2 else 0
    val, tr = order[:n_val], order[n_val:]
    good = np.ones_like(flux, dtype=bool) if mask is None else mask
    vae = BetaVAE(p, latent_dim, seed=seed, **(model_kwargs or {}))
    # Offset and scale from the training spectra: the network sees flux - mean over one rms.
    w = good[tr]
    cnt = np.maximum(w.sum(0), 1)
    offset = (flux[tr] * w).sum(0) / cnt
    offset = np.where(w.any(0), offset, 1.0).astype(np.float32)
    dev = (flux[tr] - offset) * w
    scale = float(np.sqrt(np.sum(dev * dev) / max(int(w.sum()), 1))) or 1.0
    vae.offset[...] = jnp.asarray(offset)
    vae.scale[...] = jnp.asarray(scale, jnp.float32)
    # fill masked pixels with the mean spectrum: what the encoder sees there carries no information
    flux = np.where(good, flux, offset[None]).astype(np.float32)

    chunks = -(-int(steps) // _CHUNK)
    total = chunks * _CHUNK
    sched = optax.warmup_cosine_decay_schedule(0.0, learning_rate, min(200, total // 10 + 1), total,
                                               end_value=0.05 * learning_rate)
    opt = optax.adam(sched)
    graphdef, params, rest = nnx.split(vae, nnx.Param, ...)
    opt_state = opt.init(params)
    masked = mask is not None
    loss = _loss_fn(graphdef, rest, sigma, masked)
    x_dev = jnp.asarray(flux[tr])
    m_dev = jnp.asarray(good[tr], jnp.float32) if masked else None
    warm = max(1.0, float(kl_warmup) * total)

    @jax.jit
    def step_fn(params, opt_state, idx, key, step):
        x = x_dev[idx]
        m = m_dev[idx] if masked else None
        b = beta * jnp.minimum(1.0, step / warm)
        (val_, (recon, kl)), g = jax.value_and_grad(loss, has_aux=True)(params, x, m, key, b)
        upd, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, upd), opt_state, jnp.stack([val_ * x.shape[-1], recon, kl])

    bs = int(batch_size)
    key = jax.random.key(seed)
    history = []
    t0 = time.perf_counter()
    compile_s = 0.0
    for c in range(chunks):
        idx = jnp.asarray(rng.integers(0, tr.size, size=(_CHUNK, bs)), jnp.int32)
        key, sub = jax.random.split(key)
        keys = jax.random.split(sub, _CHUNK)
        acc = []
        for i in range(_CHUNK):
            params, opt_state, out = step_fn(params, opt_state, idx[i], keys[i], jnp.float32(c * _CHUNK + i))
            acc.append(out)
            if c == 0 and i == 0:
                out.block_until_ready()
                compile_s = time.perf_counter() - t0
        lv, rc, kl = (float(x) for x in np.mean(np.asarray(jnp.stack(acc)), axis=0))
        step = (c + 1) * _CHUNK
        history.append({"step": step, "loss": lv, "recon": rc, "kl": kl,
                        "beta": float(beta * min(1.0, (step - 1) / warm))})
        if progress:
            print(f"step {step:6d}  loss {lv:12.2f}  recon {rc:12.2f}  kl {kl:7.2f}  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if not np.isfinite(lv):
            raise FloatingPointError(f"the loss became {lv} at step {step}; lower learning_rate")
    seconds = time.perf_counter() - t0
    nnx.update(vae, params)

    sub_tr = tr[:5000]
    train_rms = _rms(vae, flux[sub_tr], good[sub_tr])
    held = val if n_val else sub_tr
    val_rms = _rms(vae, flux[val], good[val]) if n_val else float("nan")
    r = (flux[held] - offset) * good[held]
    mean_rms = float(np.sqrt(np.sum(r * r) / max(int(good[held].sum()), 1)))
    mu, logvar = encode(vae, flux[held])
    kl_dim = np.mean(0.5 * (mu**2 + np.exp(logvar) - logvar - 1.0), axis=0)
    report = TrainReport(latent_dim=int(latent_dim), beta=float(beta), sigma=float(sigma), steps=total,
                         batch_size=bs, n_train=int(tr.size), n_val=int(n_val), train_rms=train_rms,
                         val_rms=val_rms, mean_rms=mean_rms, kl_per_dim=kl_dim, history=tuple(history),
                         seconds=seconds, compile_seconds=compile_s)
    return vae, report


def load_stack_flux(paths, *, wave=None, normalize: bool = True):
    """Spectra of one or more HDF5 stacks (``jaxspec pack``), masked and median-normalized.

    Args:
        paths: a stack file or a list of them; all must share one wavelength grid.
        wave: optional (P,) vacuum wavelengths [A] the stacks must be on (e.g. the grid a
            VAE was trained on).
        normalize: divide each spectrum by its median over good pixels.

    Returns:
        ``(flux, good, wave, ids)``: (N, P) float32 normalized flux with masked pixels at 1,
        (N, P) bool mask (False at NaN/inf flux, ivar 0, non-finite or non-positive err),
        (P,) vacuum wavelengths [A] and (N,) identifiers ``"file:id"``.

    Raises:
        ValueError: not a stack, stacks on different grids, a grid other than ``wave``, or a
            spectrum with no good pixel (the message names the file).
    """
    from jaxspec.io.stack import read_stack

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ValueError("no stack files given")
    ref = None if wave is None else np.asarray(wave, dtype=np.float64)
    fluxes, goods, ids = [], [], []
    first = "the given wave" if ref is not None else None
    for path in paths:
        s = read_stack(path)
        if ref is None:
            ref, first = s.wave, str(path)
        elif s.wave.shape != ref.shape or not np.allclose(s.wave, ref, rtol=1e-9, atol=0.0):
            raise ValueError(f"{path}: its wavelength grid ({s.wave.size} pixels, {s.wave[0]:.3f}-"
                             f"{s.wave[-1]:.3f} A) differs from {first}'s ({ref.size} pixels, {ref[0]:.3f}-"
                             f"{ref[-1]:.3f} A); resample the spectra onto one grid first")
        try:
            f, g = prepare_flux(s.flux, ivar=s.ivar, err=s.err, normalize=normalize)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        fluxes.append(f)
        goods.append(g)
        ids += [f"{Path(path).name}:{i}" for i in s.ids]
    return np.concatenate(fluxes), np.concatenate(goods), ref, np.asarray(ids, dtype=object)


def train_vae_on_stack(paths, *, normalize: bool = True, **options):
    """Train a :class:`~jaxspec.latent.BetaVAE` on the spectra of HDF5 stacks.

    Args:
        paths: a stack file (``jaxspec pack``, :func:`jaxspec.io.write_stack`) or a list of
            them on one wavelength grid.
        normalize: divide each spectrum by its median over good pixels (set False for flux
            that is already continuum-normalized).
        **options: :func:`train_vae` options (``latent_dim``, ``beta``, ``steps``...).

    Returns:
        ``(vae, report, wave)``: the trained VAE, its :class:`TrainReport` and the (P,) vacuum
        wavelengths [A] of the stacks.

    Raises:
        ValueError: as :func:`load_stack_flux` and :func:`train_vae`.
    """
    flux, good, wave, _ = load_stack_flux(paths, normalize=normalize)
    vae, report = train_vae(flux, mask=good, **options)
    return vae, report, wave
