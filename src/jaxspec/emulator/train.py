"""Training emulators: label designs, training sets, an HDF5 grid format and an optax loop.

HDF5 grid schema (``write_grid`` / ``read_grid``), all datasets at the root:

=============  ============  ===============================================
name           shape         content
=============  ============  ===============================================
``labels``     (N, L) float  stellar labels, one row per spectrum
``flux``       (N, P) float  continuum-normalized flux on ``wave``
``wave``       (P,) float64  vacuum wavelengths [A], increasing
=============  ============  ===============================================

and the root attribute ``label_names`` (a JSON list of L names, e.g.
``["teff", "logg", "feh"]``). Extra datasets and attributes are ignored.

Training (:func:`train_emulator`) fits an MLP to (labels, flux) with Adam
and a warm-up + cosine learning-rate schedule on minibatches, holds out a
validation split, evaluates it every ``eval_every`` steps, keeps the best
parameters, and stops early when the validation rms has not improved for
``patience`` evaluations. Seeds make runs reproducible on one device.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.physics.grid import check_wavelengths

__all__ = [
    "TrainingReport",
    "emulator_from_generator",
    "make_training_set",
    "read_grid",
    "sample_labels",
    "train_emulator",
    "write_grid",
]


def sample_labels(bounds, n: int, *, seed: int = 0, method: str = "sobol") -> np.ndarray:
    """Space-filling label design inside a box.

    Args:
        bounds: (L, 2) lower and upper bounds.
        n: number of label vectors.
        seed: random seed (scrambling of the Sobol/LHS designs).
        method: ``"sobol"`` (scrambled Sobol sequence), ``"lhs"`` (Latin
            hypercube) or ``"uniform"``.

    Returns:
        (n, L) float64 labels.
    """
    from scipy.stats import qmc

    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.ndim != 2 or bounds.shape[1] != 2 or np.any(bounds[:, 1] <= bounds[:, 0]):
        raise ValueError(f"bounds must have shape (L, 2) with lo < hi; got {bounds.tolist()}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    d = bounds.shape[0]
    if method == "sobol":
        # Sobol points are best balanced for n a power of 2; other n are fine
        # for training sets, so scipy's warning about it is silenced.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            u = qmc.Sobol(d, scramble=True, seed=seed).random(n)
    elif method == "lhs":
        u = qmc.LatinHypercube(d, seed=seed).random(n)
    elif method == "uniform":
        u = np.random.default_rng(seed).uniform(size=(n, d))
    else:
        raise ValueError(f"unknown method {method!r}; use 'sobol', 'lhs' or 'uniform'")
    return bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * u


def make_training_set(
    model, labels, *, bin_pixels: int = 1, chunk: int = 1024, batch_size: int = 64
):
    """Spectra of a spectral model for given labels, optionally binned to coarser pixels.

    Args:
        model: a spectral model with ``flux_batch`` (e.g. :class:`jaxspec.LineListGenerator`).
        labels: (N, L) labels in the model's ``label_names`` order and units
            (teff [K], logg and feh [dex], ...).
        bin_pixels: average this many model pixels into one (flux-conserving;
            the generator resolves lines at 1 km/s, an emulator needs fewer pixels).
        chunk: spectra per compiled call.
        batch_size: spectra per step inside a call (the model's
            ``flux_batch(..., batch_size=)``).

    Returns:
        ``(flux (N, P'), wave (P',))``: binned continuum-normalized flux and
        the geometric mean vacuum wavelength [A] of each bin (uniform in ln
        lambda again); model pixels beyond a multiple of ``bin_pixels`` are dropped.
    """
    labels = np.asarray(labels, dtype=np.float64)
    if bin_pixels < 1:
        raise ValueError(f"bin_pixels must be >= 1, got {bin_pixels}")
    fn = jax.jit(lambda lab: model.flux_batch(lab, batch_size=batch_size))
    n_keep = model.wave.size // bin_pixels * bin_pixels
    out = []
    for i in range(0, labels.shape[0], chunk):
        f = np.asarray(fn(jnp.asarray(labels[i : i + chunk], jnp.result_type(float))))
        out.append(f[:, :n_keep].reshape(f.shape[0], -1, bin_pixels).mean(-1))
    wave = np.exp(np.log(model.wave[:n_keep]).reshape(-1, bin_pixels).mean(-1))
    flux = np.concatenate(out)
    if not np.all(np.isfinite(flux)):
        raise FloatingPointError("the spectral model returned non-finite flux")
    return flux, wave


def write_grid(path, labels, flux, wave, label_names) -> None:
    """Write a training grid in the HDF5 schema of this module.

    Args:
        path: HDF5 file to create (overwritten).
        labels: (N, L) labels in label units (teff [K], logg and feh [dex], ...).
        flux: (N, P) continuum-normalized flux (stored gzip-compressed, as given).
        wave: (P,) vacuum wavelengths [A], increasing.
        label_names: L names, the columns of ``labels``.

    Raises:
        ValueError: inconsistent shapes or bad wavelengths.
    """
    import h5py

    labels, flux = np.asarray(labels), np.asarray(flux)
    wave = check_wavelengths(wave, "wave")
    if labels.ndim != 2 or flux.ndim != 2 or labels.shape[0] != flux.shape[0]:
        raise ValueError(f"labels {labels.shape} and flux {flux.shape} must be (N, L) and (N, P)")
    if flux.shape[1] != wave.size or labels.shape[1] != len(label_names):
        raise ValueError(
            f"flux has {flux.shape[1]} pixels for {wave.size} wavelengths; "
            f"labels have {labels.shape[1]} columns for {len(label_names)} names"
        )
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=labels)
        f.create_dataset("flux", data=flux, compression="gzip")
        f.create_dataset("wave", data=wave)
        f.attrs["label_names"] = json.dumps(list(label_names))


def read_grid(path):
    """Read a training grid: ``(labels (N, L), flux (N, P), wave (P,), label_names)``.

    Args:
        path: an HDF5 file written by :func:`write_grid` (or
            :func:`~jaxspec.emulator.load_phoenix_grid`).

    Returns:
        Labels in label units, continuum-normalized flux, vacuum wavelengths
        [A] and the tuple of L label names.

    Raises:
        ValueError: unreadable file, a missing dataset or attribute, or
            inconsistent shapes (the message names which).
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        for name in ("labels", "flux", "wave"):
            if name not in f:
                raise ValueError(f"{path}: grid file lacks the dataset {name!r}")
        if "label_names" not in f.attrs:
            raise ValueError(f"{path}: grid file lacks the attribute 'label_names'")
        labels, flux, wave = f["labels"][()], f["flux"][()], f["wave"][()]
        names = tuple(json.loads(f.attrs["label_names"]))
    if labels.ndim != 2 or flux.ndim != 2 or labels.shape[0] != flux.shape[0]:
        raise ValueError(f"{path}: labels {labels.shape} and flux {flux.shape} do not match")
    if flux.shape[1] != np.shape(wave)[0] or labels.shape[1] != len(names):
        raise ValueError(f"{path}: flux, wave and label_names sizes do not match")
    return labels, flux, check_wavelengths(wave, "wave"), names


@dataclasses.dataclass(frozen=True)
class TrainingReport:
    """What :func:`train_emulator` measured.

    Attributes:
        val_rms: rms of ``emulator - truth`` over the validation spectra and
            pixels (flux units: normalized flux for a normalized grid).
        val_p99_per_pixel: (P,) 99th percentile of ``|emulator - truth|`` per pixel.
        best_step: step of the kept parameters.
        steps: steps run.
        history: list of (step, train rms, validation rms).
        seconds: wall time.
    """

    val_rms: float
    val_p99_per_pixel: np.ndarray
    best_step: int
    steps: int
    history: list
    seconds: float


def train_emulator(
    labels,
    flux,
    wave,
    label_names,
    *,
    label_bounds=None,
    hidden=(256, 256, 256),
    activation: str = "silu",
    steps: int = 20000,
    batch_size: int = 512,
    learning_rate: float = 2e-3,
    warmup: int = 500,
    val_fraction: float = 0.1,
    val_data=None,
    eval_every: int = 1000,
    patience: int = 10,
    seed: int = 0,
    progress: bool = True,
):
    """Train an MLP emulator on (labels, flux) with optax.

    Args:
        labels: (N, L) training labels in label units (teff [K], logg and
            feh [dex], ...), columns in ``label_names`` order.
        flux: (N, P) training flux, normally continuum-normalized (the
            emulator predicts the same units).
        wave: (P,) vacuum wavelengths [A], increasing.
        label_names: L label names.
        label_bounds: (L, 2) box of the emulator (default: the labels' range);
            also sets the input scaling ``(labels - lo) / (hi - lo) - 0.5``.
        hidden, activation: MLP architecture.
        steps, batch_size, learning_rate, warmup: Adam with a warm-up + cosine schedule.
        val_fraction: share of the spectra held out (ignored with ``val_data``).
        val_data: optional ``(labels, flux)`` validation set.
        eval_every, patience: validation cadence and early-stopping patience
            (in evaluations).
        seed: seeds the split, the initialization and the minibatches.
        progress: show a tqdm progress bar (quiet when not on a terminal).

    Returns:
        ``(emulator, TrainingReport)``; the emulator holds the best parameters.
    """
    import optax
    from flax import nnx

    from jaxspec.emulator.emulator import Emulator
    from jaxspec.emulator.networks import MLP

    labels = np.asarray(labels, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    wave = check_wavelengths(wave, "wave")
    if labels.ndim != 2 or flux.shape != (labels.shape[0], wave.size):
        raise ValueError(f"labels {labels.shape}, flux {flux.shape} and wave {wave.shape} do not match")
    if labels.shape[1] != len(label_names):
        raise ValueError(f"{labels.shape[1]} label columns for {len(label_names)} label_names")
    if not (np.all(np.isfinite(labels)) and np.all(np.isfinite(flux))):
        raise ValueError("training labels and flux must be finite")
    rng = np.random.default_rng(seed)
    if val_data is None:
        order = rng.permutation(labels.shape[0])
        n_val = max(1, int(round(val_fraction * labels.shape[0])))
        val_idx, tr_idx = order[:n_val], order[n_val:]
        l_val, f_val = labels[val_idx], flux[val_idx]
        labels, flux = labels[tr_idx], flux[tr_idx]
    else:
        l_val, f_val = (np.asarray(a, dtype=np.float64) for a in val_data)
    bounds = (np.stack([labels.min(0), labels.max(0)], 1) if label_bounds is None
              else np.asarray(label_bounds, dtype=np.float64))
    lo, hi = bounds[:, 0], bounds[:, 1]
    dtype = jnp.result_type(float)

    def scale(lab):
        return jnp.asarray((lab - lo) / (hi - lo) - 0.5, dtype)

    x_tr, y_tr = scale(labels), jnp.asarray(flux, dtype)
    x_va, y_va = scale(l_val), jnp.asarray(f_val, dtype)
    offset = jnp.mean(y_tr, axis=0)
    model = MLP(len(label_names), wave.size, tuple(hidden), activation, rngs=nnx.Rngs(seed),
                param_dtype=dtype)
    warmup = min(warmup, steps // 10)
    sched = optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, steps, learning_rate * 1e-2)
    opt = nnx.Optimizer(model, optax.adam(sched), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, opt, x, y):
        def loss(m):
            return jnp.mean((m(x) + offset - y) ** 2)

        value, grads = nnx.value_and_grad(loss)(model)
        opt.update(model, grads)
        return value

    @nnx.jit
    def val_resid(model):
        return model(x_va) + offset - y_va

    key = jax.random.PRNGKey(seed)
    best, best_rms, best_step, stale = nnx.state(model), np.inf, 0, 0
    history = []
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="training emulator", unit="step", mininterval=2.0)
    step = 0
    for step in range(1, steps + 1):
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, (batch_size,), 0, x_tr.shape[0])
        train_mse = train_step(model, opt, x_tr[idx], y_tr[idx])
        if step % eval_every == 0 or step == steps:
            rms = float(jnp.sqrt(jnp.mean(val_resid(model) ** 2)))
            history.append((step, float(jnp.sqrt(train_mse)), rms))
            if not np.isfinite(rms):
                raise FloatingPointError(f"training diverged at step {step} (validation rms {rms})")
            if rms < best_rms:
                best, best_rms, best_step, stale = jax.tree_util.tree_map(
                    jnp.copy, nnx.state(model)), rms, step, 0
            else:
                stale += 1
            if bar is not None:
                bar.set_postfix(val_rms=f"{rms:.2e}", best=f"{best_rms:.2e}")
            if stale >= patience:
                break
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    nnx.update(model, best)
    resid = np.asarray(val_resid(model))
    report = TrainingReport(
        val_rms=float(np.sqrt(np.mean(resid**2))),
        val_p99_per_pixel=np.percentile(np.abs(resid), 99, axis=0),
        best_step=best_step,
        steps=step,
        history=history,
        seconds=time.perf_counter() - t0,
    )
    emulator = Emulator(model, lo, hi, label_names=tuple(label_names), wave=wave,
                        label_bounds=bounds, flux_offset=np.asarray(offset))
    return emulator, report


def emulator_from_generator(
    generator,
    n_train: int = 8192,
    *,
    label_bounds=None,
    bin_pixels: int = 3,
    n_val: int = 512,
    seed: int = 0,
    method: str = "sobol",
    **train_kwargs,
):
    """Make an emulator for any band and label box from a spectral model, in one call.

    Draws ``n_train`` labels with a space-filling design (``method``) inside
    ``label_bounds`` (default: the model's ``label_bounds``), computes the
    model's spectra binned by ``bin_pixels``, draws an independent uniform
    validation set of ``n_val``, and trains with :func:`train_emulator`
    (``train_kwargs`` go there).

    Args:
        generator: a spectral model with ``flux_batch``, ``label_names``,
            ``label_bounds`` and ``wave`` (e.g. :class:`jaxspec.LineListGenerator`).
        n_train: training spectra.
        label_bounds: (L, 2) label box in label units (teff [K], logg and feh
            [dex], ...); default the generator's.
        bin_pixels: model pixels averaged into one emulator pixel.
        n_val: validation spectra (uniform draws).
        seed: seeds the designs (validation: ``seed + 1``) and the training.
        method: ``"sobol"``, ``"lhs"`` or ``"uniform"`` (:func:`sample_labels`).
        **train_kwargs: passed to :func:`train_emulator` (``steps``,
            ``hidden``, ``learning_rate``...).

    Returns:
        ``(emulator, TrainingReport)``.
    """
    bounds = np.asarray(generator.label_bounds if label_bounds is None else label_bounds, dtype=np.float64)
    labels = sample_labels(bounds, n_train, seed=seed, method=method)
    val = sample_labels(bounds, n_val, seed=seed + 1, method="uniform")
    flux, wave = make_training_set(generator, labels, bin_pixels=bin_pixels)
    f_val, _ = make_training_set(generator, val, bin_pixels=bin_pixels)
    return train_emulator(labels, flux, wave, generator.label_names, label_bounds=bounds,
                          val_data=(val, f_val), seed=seed, **train_kwargs)
