"""Training, using and storing the amortized predictor of both stars, and the binary detector.

:func:`simulate_training_set` makes binaries and single stars with the bundled emulator
through :class:`~jaxspec.models.BinaryModel` (random labels in the model's box, rv within
+-150 km/s for each star, vsini 0-50 km/s, flux ratio 0.1-1, S/N 10-150 log-uniform, a
random quadratic-times-slope continuum) on the network's grid at one resolving power.
:func:`train_amortized` fits :class:`~jaxspec.amortized.net.AmortizedNet` with optax
(Adam, warm-up and cosine decay) on the order-indifferent Gaussian likelihood of the
scaled targets plus a binary cross-entropy, keeps the parameters with the best
validation loss, and sets the detection threshold at a stated false-positive rate on
held-out single stars. :class:`AmortizedPredictor` applies it to any spectrum: resampled
onto the network's grid (refused with both grids named when they do not overlap
enough), continuum divided out by an iteratively clipped Chebyshev fit, one pass.

File format (HDF5, :meth:`AmortizedPredictor.save`), version :data:`AMORTIZED_VERSION`:
root attributes ``format = "jaxspec-amortized"``, ``version``, ``architecture``,
``ranges``, ``meta`` (JSON), ``resolution``, ``threshold``, ``false_positive_rate``;
datasets ``wave`` (P,) and ``params/<name>`` (the network's parameters by ``nnx.state``
path).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxspec.amortized.net import TARGETS, AmortizedNet, order_free_nll, swap_stars

__all__ = [
    "AMORTIZED_VERSION",
    "AmortizedPredictor",
    "TrainReport",
    "calibrate_spread",
    "default_predictor",
    "detect_binary",
    "network_grid",
    "normalize_continuum",
    "simulate_training_set",
    "train_amortized",
]

#: Version of the predictor's HDF5 layout; files of other versions are refused.
AMORTIZED_VERSION = 1
_FORMAT = "jaxspec-amortized"
#: Fraction of the network's grid an input spectrum must cover.
MIN_COVERAGE = 0.8
_DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "amortized_default.h5"


def network_grid(wave_min: float = 4965.0, wave_max: float = 5335.0, pixel_kms: float = 16.0) -> np.ndarray:
    """The network's input grid: (P,) vacuum wavelengths [A] uniform in ln(lambda).

    Args:
        wave_min, wave_max: range [A] (inside the bundled model's 4950-5350 A, leaving
            room for the largest shift).
        pixel_kms: pixel size [km/s] (16 km/s: 2.5 pixels per FWHM at R = 7,500).
    """
    from jaxspec.physics.grid import log_lambda_grid

    return log_lambda_grid(wave_min, wave_max, pixel_kms=pixel_kms)


def normalize_continuum(flux, good, *, degree: int = 3, iterations: int = 6, clip: float = 1.0):
    """Flux divided by its continuum: a Chebyshev polynomial refitted to the pixels above it.

    Each iteration fits the polynomial (weighted least squares over ``good`` pixels), then
    drops pixels more than ``clip`` standard deviations below it (absorption lines).
    Pure jax; vmap it over spectra.

    Args:
        flux: (P,) flux in any units.
        good: (P,) bool, pixels to use.
        degree: polynomial degree.
        iterations: fit-and-clip rounds.
        clip: rejection threshold below the fit [standard deviations].

    Returns:
        (P,) normalized flux (1 where ``good`` is false).
    """
    p = flux.shape[-1]
    x = jnp.linspace(-1.0, 1.0, p, dtype=flux.dtype)
    v = jnp.stack([jnp.cos(k * jnp.arccos(jnp.clip(x, -1.0, 1.0))) for k in range(degree + 1)], axis=1)
    w = good.astype(flux.dtype)
    f = jnp.where(good, flux, 0.0)
    fit = jnp.ones_like(flux)
    for _ in range(iterations):
        a = (v * w[:, None]).T @ v + 1e-9 * jnp.eye(degree + 1, dtype=flux.dtype)
        coef = jnp.linalg.solve(a, (v * w[:, None]).T @ f)
        fit = v @ coef
        r = f - fit
        s = jnp.sqrt(jnp.sum(w * r * r) / jnp.maximum(jnp.sum(w), 1.0))
        w = (good & (r > -clip * s)).astype(flux.dtype)
    fit = jnp.where(jnp.abs(fit) > 1e-30, fit, 1.0)
    return jnp.where(good, flux / fit, 1.0)


def _network_input(flux, good):
    return jnp.where(good, jax.vmap(normalize_continuum)(flux, good) - 1.0, 0.0)


def simulate_training_set(n: int, rng, *, model=None, wave=None, resolution: float = 7500.0,
                          binary_fraction: float = 0.7, snr=(10.0, 150.0), flux_ratio=(0.1, 1.0),
                          rv_difference=None, batch_size: int = 256):
    """Binaries and single stars with known targets, on the network's grid.

    Args:
        n: number of spectra.
        rng: ``numpy.random.Generator``.
        model: spectral model (default :func:`jaxspec.default_model`).
        wave: (P,) network grid [A] (default :func:`network_grid`).
        resolution: resolving power of the Gaussian LSF.
        binary_fraction: fraction of binaries (the rest are single stars).
        snr: (low, high) S/N per pixel, drawn log-uniform.
        flux_ratio: (low, high) range of the binaries' flux ratio (star 2 / star 1).
        rv_difference: optional (low, high) range of ``|rv_1 - rv_2|`` [km/s]; by default
            both velocities are independent within +-150 km/s.
        batch_size: spectra per compiled call.

    Returns:
        dict with ``flux`` (n, P) float32 observed flux (continuum included), ``err`` (n, P),
        ``targets`` (n, T) physical targets in :data:`~jaxspec.amortized.net.TARGETS` order
        (star 2 the fainter; its block is meaningless for single stars, share 0),
        ``binary`` (n,) bool, ``snr`` (n,), ``wave`` (P,), and ``params`` ``{name: (n,)}``
        of the binary model (flux ratio 0 for single stars).
    """
    import jaxspec
    from jaxspec.models import BinaryModel

    model = jaxspec.default_model() if model is None else model
    wave = network_grid() if wave is None else np.asarray(wave, np.float64)
    bm = BinaryModel(model, wave, resolution=resolution, rv_max=200.0, vsini_max=60.0)
    box = np.asarray(model.label_bounds)
    names = list(model.label_names)
    n = int(n)
    binary = rng.uniform(size=n) < binary_fraction
    q = np.where(binary, rng.uniform(flux_ratio[0], flux_ratio[1], n), 0.0)
    par = {}
    for k, name in enumerate(names):
        lo, hi = box[k]
        if name in bm.spec.names:  # shared labels
            par[name] = rng.uniform(lo, hi, n)
        else:
            par[f"{name}_1"], par[f"{name}_2"] = rng.uniform(lo, hi, n), rng.uniform(lo, hi, n)
    rv1, rv2 = rng.uniform(-150, 150, n), rng.uniform(-150, 150, n)
    if rv_difference is not None:
        dv = rng.uniform(rv_difference[0], rv_difference[1], n) * rng.choice([-1.0, 1.0], n)
        mid = rng.uniform(-150 + np.abs(dv) / 2, 150 - np.abs(dv) / 2)
        rv1, rv2 = mid - dv / 2, mid + dv / 2
    par.update(rv_1=rv1, rv_2=rv2, vsini_1=rng.uniform(0, 50, n), vsini_2=rng.uniform(0, 50, n), flux_ratio=q)
    par = {k: v for k, v in par.items() if k in bm.spec.names}
    f = jax.jit(jax.vmap(bm.flux))
    clean = np.concatenate([np.asarray(f({k: jnp.asarray(v[a:a + batch_size]) for k, v in par.items()}))
                            for a in range(0, n, batch_size)])
    x = np.linspace(-1, 1, wave.size)
    cont = (1 + rng.uniform(-0.3, 0.3, (n, 1)) * x) * (1 + rng.uniform(-0.2, 0.2, (n, 1)) * (x * x - 1 / 3))
    s = np.exp(rng.uniform(np.log(snr[0]), np.log(snr[1]), n))
    err = cont / s[:, None]
    obs = clean * cont + rng.normal(size=clean.shape) * err
    share = q / (1 + q)
    t = np.column_stack([par["teff_1"], par["logg_1"], par["rv_1"], par["vsini_1"], par["teff_2"], par["logg_2"],
                         par["rv_2"], par["vsini_2"], par["feh"], share])
    return {"flux": obs.astype(np.float32), "err": err.astype(np.float32), "targets": t, "binary": binary,
            "snr": s, "wave": wave, "params": par}


def _ranges(model) -> dict:
    box = dict(zip(model.label_names, np.asarray(model.label_bounds).tolist(), strict=True))
    return {"teff_1": box["teff"], "logg_1": box["logg"], "rv_1": [-150.0, 150.0], "vsini_1": [0.0, 50.0],
            "teff_2": box["teff"], "logg_2": box["logg"], "rv_2": [-150.0, 150.0], "vsini_2": [0.0, 50.0],
            "feh": box["feh"], "share": [0.0, 0.5]}


@dataclasses.dataclass(frozen=True)
class TrainReport:
    """What :func:`train_amortized` measured.

    Attributes:
        history: list of (step, training loss, validation loss).
        best_step: step of the kept parameters.
        seconds: wall time of the training [s] (simulation excluded).
        threshold: detection threshold on the binary probability.
        false_positive_rate: the held-out single stars' rate it was set for.
    """

    history: list
    best_step: int
    seconds: float
    threshold: float
    false_positive_rate: float


class AmortizedPredictor:
    """The trained network with its grid, resolving power, target ranges and detection threshold.

    Args:
        net: an :class:`~jaxspec.amortized.net.AmortizedNet`.
        wave: (P,) the network's grid, vacuum wavelengths [A].
        resolution: the resolving power it was trained at.
        ranges: ``{target: [low, high]}`` used to scale the targets.
        threshold: detection threshold on the binary probability.
        false_positive_rate: the single-star false-positive rate the threshold was set for.
        meta: JSON-serializable notes (training set, steps, time).
        sigma_scale: optional (T,) factors on the network's spreads, set by
            :func:`calibrate_spread` so that each covers 68 % of held-out truths.
    """

    def __init__(self, net, wave, resolution: float, ranges: dict, threshold: float = 0.5,
                 false_positive_rate: float = float("nan"), meta: dict | None = None, sigma_scale=None):
        self.net = net
        self.wave = np.asarray(wave, np.float64)
        self.resolution = float(resolution)
        self.ranges = {k: [float(a), float(b)] for k, (a, b) in ranges.items()}
        self.threshold = float(threshold)
        self.false_positive_rate = float(false_positive_rate)
        self.meta = dict(meta or {})
        self.sigma_scale = np.ones(len(TARGETS)) if sigma_scale is None else np.asarray(sigma_scale, np.float64)
        if self.sigma_scale.shape != (len(TARGETS),):
            raise ValueError(f"sigma_scale must have shape ({len(TARGETS)},), got {self.sigma_scale.shape}")
        lo = np.array([self.ranges[t][0] for t in TARGETS])
        hi = np.array([self.ranges[t][1] for t in TARGETS])
        self._mid, self._half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        graphdef, state = nnx.split(net)
        self._apply = jax.jit(lambda st, x: nnx.merge(graphdef, st)(x))
        self._features = jax.jit(lambda st, x: nnx.merge(graphdef, st).features(x))
        self._state = state

    def scale(self, y):
        """Physical targets ``y`` (..., T) in TARGETS order (teff [K], logg [dex], rv and vsini
        [km/s], feh [dex], share) -> scaled (about -1..1)."""
        return (np.asarray(y) - self._mid) / self._half

    def unscale(self, z, log_sigma=None):
        """Scaled means ``z`` (..., T) (and ``log_sigma``, their log spreads) -> physical means
        (and 1-sigma spreads) in target units (teff [K], logg [dex], rv and vsini [km/s])."""
        y = np.asarray(z) * self._half + self._mid
        if log_sigma is None:
            return y
        return y, np.exp(np.asarray(log_sigma)) * self._half

    def inputs(self, flux, wave=None, err=None, ivar=None):
        """Network inputs (N, P) from spectra: resampled to the grid, continuum divided out.

        Args:
            flux: (P_obs,) or (N, P_obs) observed flux (any continuum).
            wave: (P_obs,) vacuum wavelengths [A] (default: the network's grid).
            err, ivar: optional (N, P_obs) errors or inverse variances; pixels with
                ``ivar == 0`` or non-finite flux are masked.

        Returns:
            (N, P) float32 inputs.

        Raises:
            ValueError: the grids overlap by less than :data:`MIN_COVERAGE` of the network's
                grid (both ranges named), shapes that do not match, all pixels masked.
        """
        flux = np.atleast_2d(np.asarray(flux, np.float64))
        good = np.isfinite(flux)
        if ivar is not None:
            good &= np.atleast_2d(np.asarray(ivar)) > 0
        if err is not None:
            e = np.atleast_2d(np.asarray(err, np.float64))
            good &= np.isfinite(e) & (e > 0)
        if wave is not None:
            wave = np.asarray(wave, np.float64)
            if wave.ndim != 1 or wave.size != flux.shape[1]:
                raise ValueError(f"wave has shape {wave.shape} for flux of shape {flux.shape}")
            if np.any(np.diff(wave) <= 0):
                raise ValueError("wave must be strictly increasing")
            same = wave.size == self.wave.size and np.allclose(wave, self.wave, rtol=1e-9)
            if not same:
                inside = (self.wave >= wave[0]) & (self.wave <= wave[-1])
                if inside.mean() < MIN_COVERAGE:
                    raise ValueError(
                        f"the spectrum covers {wave[0]:.1f}-{wave[-1]:.1f} A, the network's grid "
                        f"{self.wave[0]:.1f}-{self.wave[-1]:.1f} A ({self.wave.size} pixels); it must cover at "
                        f"least {MIN_COVERAGE:.0%} of it (covers {inside.mean():.0%})")
                fl = np.stack([np.interp(self.wave, wave, np.where(g, f, 0.0)) for f, g in zip(flux, good, strict=True)])
                gd = np.stack([np.interp(self.wave, wave, g.astype(float)) > 0.999 for g in good]) & inside[None, :]
                flux, good = fl, gd
        if flux.shape[1] != self.wave.size:
            raise ValueError(f"flux has {flux.shape[1]} pixels; the network's grid has {self.wave.size} "
                             "(give wave= to resample)")
        empty = good.sum(axis=1) < 0.5 * self.wave.size
        if np.any(empty):
            raise ValueError(f"spectra {np.flatnonzero(empty)[:5].tolist()} have fewer than half of the network's "
                             "pixels unmasked")
        return np.asarray(jax.jit(_network_input)(jnp.asarray(flux, jnp.float32), jnp.asarray(good)))

    def raw(self, x, batch_size: int = 1024):
        """Network outputs for inputs ``x`` (N, P), ``batch_size`` at a time:
        ``(mean (N, T), log_sigma (N, T), logit (N,))``, scaled targets."""
        outs = [self._apply(self._state, jnp.asarray(x[a:a + batch_size])) for a in range(0, len(x), batch_size)]
        return tuple(np.concatenate([np.asarray(o[k]) for o in outs]) for k in range(3))

    def features(self, x, batch_size: int = 1024) -> np.ndarray:
        """The network's penultimate layer for inputs ``x`` (N, P) from :meth:`inputs`: (N, hidden),
        ``batch_size`` spectra at a time (the embedding of ``jaxspec map``)."""
        return np.concatenate([np.asarray(self._features(self._state, jnp.asarray(x[a:a + batch_size])))
                               for a in range(0, len(x), batch_size)])

    def predict(self, flux, wave=None, err=None, ivar=None) -> dict:
        """Both stars' parameters and the binary probability, one network pass per spectrum.

        Args:
            flux: (P_obs,) or (N, P_obs) observed flux (any continuum).
            wave: (P_obs,) vacuum wavelengths [A] (default: the network's grid).
            err, ivar: optional (N, P_obs) errors or inverse variances (masking only).

        Returns:
            ``{name: (N,) array}`` for every target of :data:`~jaxspec.amortized.net.TARGETS`
            (teff [K], logg [dex], rv and vsini [km/s], feh [dex], share) and
            ``<name>_err`` (1-sigma of the Gaussian head), ``flux_ratio`` and its error,
            ``p_binary`` (the detector's probability) and ``is_binary`` (``p_binary`` above
            :attr:`threshold`). Star 1 is the brighter star.
        """
        mean, log_sigma, logit = self.raw(self.inputs(flux, wave, err, ivar))
        y, s = self.unscale(mean, log_sigma)
        s = s * self.sigma_scale
        flip = y[:, -1] > 0.5  # the network's star 2 is the brighter: exchange them
        y = np.where(flip[:, None], swap_stars(y), y)
        s_swapped = swap_stars(s)
        s_swapped[:, -1] = s[:, -1]  # the spread of 1 - share is that of share
        s = np.where(flip[:, None], s_swapped, s)
        share = np.clip(y[:, -1], 0.0, 0.5)
        out = {t: y[:, k] for k, t in enumerate(TARGETS)}
        out.update({f"{t}_err": s[:, k] for k, t in enumerate(TARGETS)})
        out["flux_ratio"] = share / (1.0 - share)
        out["flux_ratio_err"] = s[:, -1] / (1.0 - share) ** 2
        out["p_binary"] = 1.0 / (1.0 + np.exp(-logit))
        out["is_binary"] = out["p_binary"] > self.threshold
        return out

    def starts(self, flux, wave=None, err=None, ivar=None) -> dict:
        """The prediction as fit starting values: ``{binary-model parameter: (N,) array}``.

        Args:
            flux: (P_obs,) or (N, P_obs) observed flux (any continuum; normalized or counts).
            wave: (P_obs,) vacuum wavelengths [A] (default: the network's grid).
            err, ivar: optional (N, P_obs) errors or inverse variances (masking only).
        """
        p = self.predict(flux, wave, err, ivar)
        names = ("teff_1", "logg_1", "rv_1", "vsini_1", "teff_2", "logg_2", "rv_2", "vsini_2", "feh", "flux_ratio")
        return {k: p[k] for k in names}

    # I/O -----------------------------------------------------------------
    def save(self, path) -> None:
        """Write the predictor to HDF5 at ``path`` (the layout of this module, overwritten)."""
        import h5py

        from jaxspec.emulator.networks import network_arrays

        with h5py.File(path, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["version"] = AMORTIZED_VERSION
            f.attrs["architecture"] = json.dumps(self.net.architecture)
            f.attrs["ranges"] = json.dumps(self.ranges)
            f.attrs["meta"] = json.dumps(self.meta)
            f.attrs["resolution"] = self.resolution
            f.attrs["threshold"] = self.threshold
            f.attrs["false_positive_rate"] = self.false_positive_rate
            f.create_dataset("sigma_scale", data=self.sigma_scale)
            f.create_dataset("wave", data=self.wave)
            for name, arr in network_arrays(self.net).items():
                f.create_dataset(f"params/{name}", data=arr)

    @classmethod
    def load(cls, path) -> AmortizedPredictor:
        """Read a predictor written by :meth:`save` from ``path``.

        Raises:
            ValueError: not readable, not a predictor file, another version (both named),
                or parameters whose names or shapes do not match the stored architecture.
        """
        import h5py

        from jaxspec.emulator.networks import network_from_arrays

        from jaxspec._h5 import open_versioned

        with open_versioned(path, _FORMAT, AMORTIZED_VERSION, "amortized-predictor",
                            "retrain with scripts/train_amortized.py") as f:
            arch = json.loads(f.attrs["architecture"])
            if "params" not in f:
                raise ValueError(f"{path}: predictor file lacks its network parameters")
            arrays = {}
            f["params"].visititems(lambda k, v: arrays.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
            wave = f["wave"][()]
            if wave.size != arch["n_pix"]:
                raise ValueError(f"{path}: grid of {wave.size} pixels for a network of {arch['n_pix']}")
            net = network_from_arrays(arch, arrays, source=str(path), build=_build)
            return cls(net, wave, float(f.attrs["resolution"]), json.loads(f.attrs["ranges"]),
                       float(f.attrs["threshold"]), float(f.attrs["false_positive_rate"]),
                       json.loads(f.attrs["meta"]), f["sigma_scale"][()] if "sigma_scale" in f else None)


def _build(arch, *, rngs):
    return AmortizedNet(arch["n_pix"], channels=arch["channels"], kernel=arch["kernel"], hidden=arch["hidden"],
                        n_targets=arch["n_targets"], rngs=rngs)


def train_amortized(data: dict, *, model=None, steps: int = 6000, batch_size: int = 128,
                    learning_rate: float = 1e-3, val_fraction: float = 0.05, false_positive_rate: float = 0.01,
                    eval_every: int = 250, seed: int = 0, progress: bool = False, **net_options):
    """Train the amortized network on a set from :func:`simulate_training_set`.

    Args:
        data: the training set (``flux``, ``err``, ``targets``, ``binary``, ``wave``).
        model: the spectral model the set was made with (for the target ranges; default
            :func:`jaxspec.default_model`).
        steps: Adam steps.
        batch_size: spectra per step.
        learning_rate: peak learning rate (warm-up and cosine decay).
        val_fraction: held-out fraction (validation loss and the detection threshold).
        false_positive_rate: the threshold is set so that this fraction of held-out single
            stars is called binary.
        eval_every: steps between validation evaluations.
        seed: initialization and batch order.
        progress: show a tqdm bar.
        **net_options: passed to :class:`~jaxspec.amortized.net.AmortizedNet` (channels,
            kernel, hidden).

    Returns:
        ``(predictor, report)``: an :class:`AmortizedPredictor` and a :class:`TrainReport`.
    """
    import optax

    import jaxspec

    model = jaxspec.default_model() if model is None else model
    wave = np.asarray(data["wave"])
    n = data["flux"].shape[0]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_val = max(int(val_fraction * n), 1)
    val, tr = perm[:n_val], perm[n_val:]
    net = AmortizedNet(wave.size, rngs=nnx.Rngs(seed), **net_options)
    pred = AmortizedPredictor(net, wave, data.get("resolution", 7500.0), _ranges(model))
    good = np.isfinite(data["flux"]) & (data["err"] > 0)
    x = np.concatenate([np.asarray(jax.jit(_network_input)(jnp.asarray(data["flux"][a:a + 2048]),
                                                           jnp.asarray(good[a:a + 2048])))
                        for a in range(0, n, 2048)])
    y = pred.scale(data["targets"]).astype(np.float32)
    ys = pred.scale(swap_stars(data["targets"])).astype(np.float32)
    b = data["binary"].astype(np.float32)

    sched = optax.warmup_cosine_decay_schedule(0.0, learning_rate, max(steps // 20, 1), steps, 0.01 * learning_rate)
    opt = nnx.Optimizer(net, optax.adamw(sched, weight_decay=1e-5), wrt=nnx.Param)

    def loss_fn(net, xb, yb, ysb, bb):
        mean, log_sigma, logit = net(xb)
        nll = order_free_nll(mean, log_sigma, yb, ysb, bb)
        bce = optax.sigmoid_binary_cross_entropy(logit, bb)
        return jnp.mean(nll + bce)

    @nnx.jit
    def step(net, opt, xb, yb, ysb, bb):
        loss, grads = nnx.value_and_grad(loss_fn)(net, xb, yb, ysb, bb)
        opt.update(net, grads)
        return loss

    @nnx.jit
    def evaluate(net, xb, yb, ysb, bb):
        return loss_fn(net, xb, yb, ysb, bb)

    history, best, best_state, best_step = [], np.inf, nnx.state(net), 0
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="amortized", unit="step")
    run = 0.0
    for k in range(1, steps + 1):
        idx = tr[rng.integers(0, tr.size, batch_size)]
        loss = step(net, opt, x[idx], y[idx], ys[idx], b[idx])
        if k % eval_every == 0 or k == steps:
            run = float(loss)
            vl = float(np.mean([float(evaluate(net, x[val[a:a + 1024]], y[val[a:a + 1024]], ys[val[a:a + 1024]],
                                               b[val[a:a + 1024]])) for a in range(0, n_val, 1024)]))
            history.append((k, run, vl))
            if vl < best:
                best, best_step = vl, k
                best_state = jax.tree.map(lambda a: a.copy(), nnx.state(net))
        if bar is not None and k % 50 == 0:
            bar.update(50)
    if bar is not None:
        bar.close()
    nnx.update(net, best_state)
    seconds = time.perf_counter() - t0
    pred = AmortizedPredictor(net, wave, data.get("resolution", 7500.0), _ranges(model))
    _, _, logit = pred.raw(x[val])
    singles = ~data["binary"][val]
    thr = 0.5
    if singles.any():
        p = 1.0 / (1.0 + np.exp(-logit[singles]))
        thr = float(np.quantile(p, 1.0 - false_positive_rate))
    meta = {"n_train": int(tr.size), "n_val": int(n_val), "steps": steps, "batch_size": batch_size,
            "seconds": seconds, "best_step": best_step, "model": "jaxspec.default_model()",
            "binary_fraction": float(np.mean(data["binary"]))}
    pred = AmortizedPredictor(net, wave, data.get("resolution", 7500.0), _ranges(model), thr,
                              false_positive_rate, meta)
    return pred, TrainReport(history, best_step, seconds, thr, false_positive_rate)


def calibrate_spread(pred: AmortizedPredictor, data: dict) -> np.ndarray:
    """Set ``pred.sigma_scale`` so that each target's spread covers 68.3 % of held-out truths.

    The predictions (brighter star first) are compared with the truths of a simulated set
    (:func:`simulate_training_set`, independent of the training set); star-2 targets and the
    light share use the binaries only. The factor of a target is the 68.3 % quantile of
    ``|prediction - truth| / spread``.

    Args:
        pred: the predictor (changed in place).
        data: a simulated set with ``flux``, ``wave``, ``targets`` and ``binary``.

    Returns:
        (T,) the factors (also stored in ``pred.sigma_scale``).
    """
    pred.sigma_scale = np.ones(len(TARGETS))
    out = pred.predict(data["flux"], data["wave"])
    t = np.asarray(data["targets"])
    binary = np.asarray(data["binary"], bool)
    scale = np.ones(len(TARGETS))
    for k, name in enumerate(TARGETS):
        use = binary if (name.endswith("_2") or name == "share") else np.ones_like(binary)
        r = np.abs(out[name] - t[:, k])[use] / out[f"{name}_err"][use]
        scale[k] = float(np.quantile(r, 0.6827)) if r.size else 1.0
    pred.sigma_scale = scale
    pred.meta["sigma_scale_from"] = int(len(t))
    return scale


_DEFAULT = None


def default_predictor() -> AmortizedPredictor:
    """The bundled predictor (trained by ``scripts/train_amortized.py`` on the default band, R 7,500).

    Raises:
        FileNotFoundError: the package was built without it (the message names the script).
    """
    global _DEFAULT
    if _DEFAULT is None:
        if not _DEFAULT_FILE.exists():
            raise FileNotFoundError(f"{_DEFAULT_FILE} is missing; build it with python scripts/train_amortized.py")
        _DEFAULT = AmortizedPredictor.load(_DEFAULT_FILE)
    return _DEFAULT


def detect_binary(flux, wave=None, err=None, ivar=None, *, predictor=None) -> dict:
    """SB2 detection in one network pass: the binary probability and the call at the stated threshold.

    Args:
        flux: (P_obs,) or (N, P_obs) observed flux (any continuum).
        wave: (P_obs,) vacuum wavelengths [A] (default: the network's grid).
        err, ivar: optional (N, P_obs) errors or inverse variances (masking only).
        predictor: an :class:`AmortizedPredictor` (default :func:`default_predictor`).

    Returns:
        ``{"p_binary": (N,), "is_binary": (N,) bool, "threshold": float,
        "false_positive_rate": float}``: the threshold was set on held-out simulated single
        stars for that false-positive rate.
    """
    pred = default_predictor() if predictor is None else predictor
    p = pred.predict(flux, wave, err, ivar)
    return {"p_binary": p["p_binary"], "is_binary": p["is_binary"], "threshold": pred.threshold,
            "false_positive_rate": pred.false_positive_rate}
