"""``sample_binary`` and ``sample_binary_batch``: NUTS posteriors of SB2 parameters.

Per spectrum: a fit (:func:`jaxspec.fit_binary`, unless one is given) starts
the chains at its best solution and its distinct local optima, and its
covariance is the initial inverse mass matrix (:mod:`jaxspec.infer.init`);
NumPyro's NUTS then samples the posterior of :mod:`jaxspec.infer.model` in
the prior windows' unconstrained space (:mod:`jaxspec.infer.kernel`). With two
or more distinct optima the chains also make mode jumps between them
(:func:`jaxspec.infer.kernel.mode_jump`): the first block of draws measures
each mode's centre and covariance and is discarded; from then on NUTS runs
in the standardised coordinates of the mode a chain is in (each mode its own
metric, :func:`jaxspec.infer.kernel.metric_jump`), the step size is
re-adapted with the jumps on, and the draws that follow visit every mode in
proportion to its posterior mass. Chains that need more draws while one of
them diverges (more than 1 % of its draws) are warmed up again once, with
one metric and one step size for all (:func:`_diverging_chain`).
Samplers are cached per (fitter, prior, settings), so many spectra on one
grid compile once.

Chain methods (``chain_method=``): ``"vectorized"``, ``"sequential"``,
``"parallel"`` (pmap over devices) and ``"threads"`` (each chain its own
call of one compiled single-chain program, the calls spread over a pool of
Python threads, one per usable CPU core; JAX releases the GIL while they
run). ``"auto"`` picks ``"parallel"`` when ``jax.local_device_count() >=
num_chains``, else ``"threads"`` on a CPU with two or more usable cores, else
``"vectorized"``. On the 2-core CPU ``"threads"`` is the fastest: vectorized
chains each pay for the deepest tree of the step (1.8x the leapfrog steps of
one chain in a measured run), and XLA runs each small program on one core.
Measured on one default-model posterior (4 chains, 500 + 500 iterations):
vectorized in two thread groups 168 s, one chain per call 97 s.
:func:`sample_binary_batch` on a CPU spreads whole spectra over the threads
in the same way: the chains of every spectrum in progress (twice as many
spectra as cores) share one pool of a thread per core.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec._docs import fill_doc
from jaxspec.fit.binary import _chosen_degrees, _get_fitter, _options, fit_binary, fit_binary_batch, prepare_spectrum
from jaxspec.fit.continuum import solve_continuum
from jaxspec.infer.init import MAX_OPTIMA, initial_state
from jaxspec.infer.kernel import CHAIN_METHODS, make_runner
from jaxspec.infer.model import CONTINUUM_MODES, log_likelihood, make_prior
from jaxspec.infer.posterior import DIVERGENCE_MAX, ESS_MIN, FLAGS, BinaryPosterior

__all__ = ["sample_binary", "sample_binary_batch"]

_SAMPLERS: dict = {}
_MAX_SAMPLERS = 8


@dataclasses.dataclass(frozen=True)
class _Settings:
    num_warmup: int
    num_samples: int
    dense_mass: bool
    target_accept_prob: float
    max_tree_depth: int
    continuum: str
    warmup_tree_depth: int
    mode_jumps: bool = True


class _Sampler:
    """Compiled pieces for one (fitter, prior, settings): the runner per chain method and group size."""

    def __init__(self, fitter, prior, settings: _Settings):
        self.fitter, self.prior, self.settings = fitter, prior, settings
        self.bm = fitter.bm
        self.dtype = fitter.dtype
        self.design = jnp.asarray(fitter.design_np, self.dtype)
        self._runs = {}
        self.log_density = jax.jit(self._log_density)
        self.hessian = jax.jit(jax.hessian(self._log_density))
        self.value_and_grad = jax.jit(jax.value_and_grad(self._log_density))
        self._predict = jax.jit(jax.vmap(self._predict_one, in_axes=(0, None, None)))
        self._components = jax.jit(self._components_one)

    def _log_density(self, z, flux, ivar):
        def loglike(theta):
            return log_likelihood(self.bm, self.design, theta, flux, ivar, continuum=self.settings.continuum)

        return self.prior.log_density(z, loglike)

    def runner(self, method: str, batched: bool, extend: int = 0, restep: int = 0, jumps: bool = True,
               single_window: bool = False):
        """The chain program: warmup then ``num_samples`` draws, or (``extend > 0``) ``extend`` more
        draws from warmed-up chains (no adaptation: their step size and mass matrix as given), after
        ``restep`` iterations that re-adapt the step size only, with mode jumps (the mode-map stage;
        ``single_window``: by one dual-averaging run, as in a re-warmup, see :func:`_diverging_chain`).
        ``jumps=False`` compiles without the mode jumps (spectra with one mode: no extra gradient)."""
        jumps = bool(jumps and self.settings.mode_jumps)
        single_window = bool(single_window and extend and restep)
        key = (method, batched, int(extend), int(restep), jumps) + (("single",) if single_window else ())
        if key not in self._runs:
            s = self.settings
            n_warm, n_draw = (int(restep), int(extend)) if extend else (s.num_warmup, s.num_samples)
            run = make_runner(self._log_density, num_warmup=n_warm, num_samples=n_draw,
                              dense_mass=s.dense_mass, target_accept_prob=s.target_accept_prob,
                              max_tree_depth=s.max_tree_depth, chain_method=method,
                              warmup_tree_depth=s.warmup_tree_depth, mode_jumps=jumps,
                              adapt_mass_matrix=not extend, warmup_jumps=bool(jumps and extend and restep),
                              mode_metric=bool(jumps and extend), single_window=single_window)
            if batched:
                run = jax.vmap(run, in_axes=(0, 0, 0, 0, 0, 0, 0))
            self._runs[key] = run if method == "parallel" else jax.jit(run)
        return self._runs[key]

    def _predict_one(self, z, flux, ivar):
        theta = self.prior.from_unconstrained(z)
        m = self.bm.flux(theta)
        cont, _ = solve_continuum(m, flux, ivar, self.design)
        return m * cont

    def _components_one(self, theta, flux, ivar):
        m = self.bm.flux(theta)
        cont, _ = solve_continuum(m, flux, ivar, self.design)
        c1, c2 = self.bm.contributions(theta)
        return c1 * cont, c2 * cont, cont


def _get_sampler(fitter, prior, settings):
    key = (id(fitter), prior.spec, tuple((k, id(v)) for k, v in prior.densities.items()), settings)
    s = _SAMPLERS.get(key)
    if s is None or s.fitter is not fitter:
        if len(_SAMPLERS) >= _MAX_SAMPLERS:
            _SAMPLERS.pop(next(iter(_SAMPLERS)))
        s = _Sampler(fitter, prior, settings)
        _SAMPLERS[key] = s
    return s


def _choose_method(chain_method, num_chains):
    if chain_method != "auto":
        if chain_method not in (*CHAIN_METHODS, "threads"):
            raise ValueError(f"chain_method must be 'auto', 'threads' or one of {CHAIN_METHODS}, "
                             f"got {chain_method!r}")
        if chain_method == "parallel" and jax.local_device_count() < num_chains:
            raise ValueError(f"chain_method='parallel' needs {num_chains} devices, JAX sees "
                             f"{jax.local_device_count()} (on a CPU set XLA_FLAGS="
                             f"--xla_force_host_platform_device_count={num_chains} before importing JAX)")
        return chain_method
    if num_chains > 1 and jax.local_device_count() >= num_chains:
        return "parallel"
    if jax.default_backend() == "cpu" and num_chains > 1:
        from jaxspec._machine import usable_cores

        if usable_cores() >= 2:
            return "threads"
    return "vectorized"


def _check_settings(num_warmup, num_samples, num_chains, continuum, target_accept_prob, max_tree_depth,
                    warmup_tree_depth=5, mode_jumps=True):
    if int(num_chains) < 1:
        raise ValueError(f"num_chains must be >= 1, got {num_chains}")
    if int(num_samples) < 4:
        raise ValueError(f"num_samples must be >= 4, got {num_samples}")
    if int(num_warmup) < 0:
        raise ValueError(f"num_warmup must be >= 0, got {num_warmup}")
    if continuum not in CONTINUUM_MODES:
        raise ValueError(f"continuum must be one of {CONTINUUM_MODES}, got {continuum!r}")
    if not 0.0 < float(target_accept_prob) < 1.0:
        raise ValueError(f"target_accept_prob must lie in (0, 1), got {target_accept_prob}")
    if not 1 <= int(max_tree_depth) <= 15:
        raise ValueError(f"max_tree_depth must be in 1..15, got {max_tree_depth}")
    if not 1 <= int(warmup_tree_depth) <= 15:
        raise ValueError(f"warmup_tree_depth must be in 1..15, got {warmup_tree_depth}")
    return _Settings(int(num_warmup), int(num_samples), True, float(target_accept_prob), int(max_tree_depth),
                     continuum, int(warmup_tree_depth), bool(mode_jumps))


_COMPILE_LOCK = threading.Lock()


def _run_chains(sampler, method, keys, z0, inv_mass, step, modes, flux, ivar, extend=0, workers=None,
                restep=0, single_window=False, clock=None):
    """One spectrum's chains as numpy arrays (see :class:`~jaxspec.infer.kernel.ChainTrace`);
    ``extend > 0``: that many further draws of warmed-up chains (``restep``, ``single_window``:
    see :meth:`_Sampler.runner`).
    ``method="threads"``: one chain per call, over ``workers``: a number of threads (default: one
    per usable core; 1: one chain after the other in this thread) or an executor shared with
    other spectra (:func:`sample_binary_batch`). ``clock``: a list to which the seconds of each
    call are appended (with threads, one entry per chain: the core-seconds spent)."""
    dt = sampler.dtype
    args = [jnp.asarray(a, dt) for a in (z0, inv_mass, step, modes)]
    d, w = jnp.asarray(flux, dt), jnp.asarray(ivar, dt)
    jumps = _usable_modes(modes[0]) >= 2
    clock = [] if clock is None else clock
    if method != "threads":
        t = time.perf_counter()
        out = sampler.runner(method, False, extend, restep, jumps, single_window)(keys, *args, d, w)
        out = jax.tree_util.tree_map(np.asarray, jax.device_get(out))
        clock.append(time.perf_counter() - t)
        return out
    from concurrent.futures import Executor, ThreadPoolExecutor

    from jaxspec._machine import usable_cores

    n = len(keys)

    def one(c):
        return (keys[c:c + 1], *(a[c:c + 1] for a in args), d, w)

    # One chain per call, so that each chain builds trees of its own size (vectorized chains all
    # pay for the deepest tree); compiled once, ahead of the threads (two threads calling a fresh
    # jit function would both compile it; the lock does the same for the spectra of a batch).
    key = ("threads", d.shape, str(d.dtype), int(extend), int(restep), jumps, bool(single_window))
    with _COMPILE_LOCK:
        if key not in sampler._runs:
            program = sampler.runner("vectorized", False, extend, restep, jumps, single_window)
            sampler._runs[key] = program.lower(*one(0)).compile()
    run = sampler._runs[key]

    def work(c):
        t = time.perf_counter()
        out = jax.device_get(run(*one(c)))
        clock.append(time.perf_counter() - t)
        return out

    if isinstance(workers, Executor):
        parts = list(workers.map(work, range(n)))
    else:
        workers = max(1, min(usable_cores() if workers is None else int(workers), n))
        if workers == 1:
            parts = [work(c) for c in range(n)]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(work, range(n)))
    return jax.tree_util.tree_map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *parts)


_NEEDS_MORE = FLAGS["r_hat"] | FLAGS["low_ess"]


def _append(trace, more):
    """``trace`` followed by the draws of ``more`` (its continuation: same step size and mass matrix)."""
    cat = {f: np.concatenate([getattr(trace, f), getattr(more, f)], axis=1)
           for f in ("z", "log_density", "diverging", "num_steps", "accept_prob", "jumped")}
    return trace._replace(**cat)


def _extension_keys(seed, k, shape):
    base = jax.random.fold_in(jax.random.key(seed), 1000 + k)
    return jax.random.split(base, int(np.prod(shape))).reshape(shape)


def _max_samples(max_samples, num_samples):
    n = 12 * int(num_samples) if max_samples is None else int(max_samples)
    if n < int(num_samples):
        raise ValueError(f"max_samples ({n}) must be >= num_samples ({num_samples})")
    return n


def _wants_more(post, num_samples, max_samples) -> bool:
    """Whether a posterior's chains continue by another block of ``num_samples`` draws.

    They do while r_hat or the bulk ESS fail (:attr:`BinaryPosterior.flag`) and another block fits
    under ``max_samples``; past half of ``max_samples``, only while the ESS can still reach
    ``ESS_MIN`` by ``max_samples`` at the rate it has grown so far (in proportion to the draws; a
    slowly mixing posterior's ESS grows faster than that early on, which is why the first half
    is not judged: on the default-model calibration, a posterior with bulk ESS 159 after 1,000
    draws had 312 after 1,500). A posterior far from it (chains that seldom switch modes, say)
    stops with its flag instead of running to the cap; with r_hat alone failing the chains
    continue (r_hat falls as the draws grow)."""
    if not post.flag & _NEEDS_MORE or post.num_draws + num_samples > max_samples:
        return False
    if 2 * post.num_draws <= max_samples:
        return True
    ess = post.min_ess_bulk
    return not (np.isfinite(ess) and ess * max_samples / post.num_draws < ESS_MIN)


def _starts(sampler, fit, prior, num_chains, rng, chi2_margin, flux, ivar):
    def hess(z):
        return sampler.hessian(jnp.asarray(z, sampler.dtype), flux, ivar)

    z0, inv_mass, optima, which = initial_state(fit, prior, num_chains, rng, chi2_margin=chi2_margin,
                                                hessian=hess)
    lp = np.array([float(sampler.log_density(jnp.asarray(z, sampler.dtype), flux, ivar)) for z in z0])
    if not np.all(np.isfinite(lp)):
        z_best, *_ = initial_state(fit, prior, 1, rng, chi2_margin=chi2_margin, jitter=0.0)
        z0 = np.where(np.isfinite(lp)[:, None], z0, z_best[0])
        if not np.isfinite(float(sampler.log_density(jnp.asarray(z_best[0], sampler.dtype), flux, ivar))):
            raise ValueError("the posterior density is not finite at the fit's solution; check the data "
                             "(flux, errors) and that the fit succeeded (fit.flag)")
    inv = np.broadcast_to(inv_mass, (num_chains, *inv_mass.shape)).copy()
    modes = _mode_centres(sampler, prior, optima if sampler.settings.mode_jumps else optima[:1], flux, ivar)
    return z0, inv, optima, which, np.broadcast_to(modes, (num_chains, *modes.shape)).copy()


def _value_and_grad(sampler, z, flux, ivar):
    lp, g = sampler.value_and_grad(jnp.asarray(z, sampler.dtype), flux, ivar)
    return float(lp), np.asarray(g, np.float64)


def _mode_centres(sampler, prior, optima, flux, ivar, max_modes=MAX_OPTIMA, iterations=12):
    """(max_modes, d + 1, d) modes for the mode jumps (:func:`jaxspec.infer.kernel.pack_modes`):
    each fit optimum moved to the nearby maximum of the sampler's log density in the unconstrained
    space by damped Newton steps (the fit's optimum is that of the chi-square in physical units, and
    a parameter pressed against a bound sits far out in z), with the Laplace covariance there
    (precision eigenvalues clipped as for the mass matrix). A centre within the jump radius of an
    earlier one (the same mode) is dropped. NaN pads unused slots; one optimum needs none."""
    from jaxspec.infer.init import _clipped_inverse
    from jaxspec.infer.kernel import jump_radius, pack_modes

    d = len(prior.spec.free)
    centres, chols = np.full((max_modes, d), np.nan), np.full((max_modes, d, d), np.nan)
    if len(optima) < 2:
        return pack_modes(centres, chols)
    radius = jump_radius(d)
    n = 0
    for o in optima[:max_modes]:
        z = prior.to_unconstrained(o, margin=1e-3)
        lp, g = _value_and_grad(sampler, z, flux, ivar)
        h = None
        for _ in range(iterations):
            if not (np.isfinite(lp) and np.all(np.isfinite(g))):
                break
            h = np.asarray(sampler.hessian(jnp.asarray(z, sampler.dtype), flux, ivar), np.float64)
            if not np.all(np.isfinite(h)):
                break
            w, v = np.linalg.eigh(-0.5 * (h + h.T))
            step = (v / np.maximum(w, 1.0)) @ (v.T @ g)  # Newton where concave, else a damped step
            t, moved = 1.0, False
            while t > 1e-3:
                lp_new, g_new = _value_and_grad(sampler, z + t * step, flux, ivar)
                if np.isfinite(lp_new) and lp_new >= lp:
                    z, lp, g, moved = z + t * step, lp_new, g_new, True
                    break
                t *= 0.5
            if not moved or float(step @ g) < 1e-6:
                break
        if not (np.isfinite(lp) and np.all(np.isfinite(z))):
            continue
        h = np.asarray(sampler.hessian(jnp.asarray(z, sampler.dtype), flux, ivar), np.float64)
        if not np.all(np.isfinite(h)):
            continue
        chol = np.linalg.cholesky(_clipped_inverse(-h) + 1e-12 * np.eye(d))
        same = any(np.sum(np.linalg.solve(chols[i], z - centres[i]) ** 2) < radius**2 for i in range(n))
        if not same:
            centres[n], chols[n] = z, chol
            n += 1
    return pack_modes(centres, chols)


_DOC_ARGS = """
        model: spectral model (default :func:`jaxspec.default_model`).
        resolution: instrument resolving power (a number or one value per pixel).
        priors: overrides of the default uniform priors, ``{name: (low, high)}``
            or ``{name: numpyro Distribution}`` (see :func:`jaxspec.infer.model.make_prior`).
        error_scale: also sample a factor on the errors (prior uniform in [0.5, 5]).
        continuum: ``"marginal"`` (integrated out analytically; default) or
            ``"profile"`` (best continuum at each point).
        num_warmup, num_samples, num_chains: NUTS iterations and chains. The
            defaults (500 warmup, then blocks of 250 draws until the diagnostics
            hold) come from ``benchmarks/bench_sample.py``: 300 warmup
            iterations left the default case with a smaller step size (tree
            depth 4.7 instead of 3.9: slower overall), and 250 draws of 4
            chains already give a bulk ESS near 500 there; harder posteriors
            continue (``max_samples``).
        max_samples: draws per chain at most (default ``12 * num_samples``: 3,000).
            While the posterior's r_hat (within modes) exceeds 1.01 or a bulk
            ESS is below 400, the warmed-up chains continue by another
            ``num_samples`` draws (same step size and mass matrix; one more
            compiled program), up to ``max_samples``; past half of it only
            while the bulk ESS, growing at its rate so far, can still reach
            400 by then (else the posterior stops early with its flag: chains
            that seldom switch modes do not run to the cap); ``max_samples =
            num_samples`` turns this off. ``settings["extensions"]`` says how
            many blocks were added. Continuing never changes the draws
            before it: a run with a larger ``max_samples`` starts with the
            same draws. Once per posterior, chains that must continue while
            one of them diverges on more than 1 % of its draws are warmed up
            again instead (one metric from all chains' draws, the step size
            re-adapted, the smallest for every chain; the draws so far are
            discarded and ``max_samples`` counts the new ones; see
            ``_diverging_chain``); ``settings["rewarms"]`` says whether.
        chain_method: ``"auto"``, ``"vectorized"``, ``"sequential"``,
            ``"parallel"`` or ``"threads"`` (module docstring).
        target_accept_prob, max_tree_depth: NUTS settings.
        warmup_tree_depth: tree depth cap during warmup (default 5: at most 31
            leapfrog steps). While dual averaging probes small step sizes early
            in each adaptation window, uncapped trees reach 255 steps and the
            warmup costs twice the sampling; the cap halves a default-model
            posterior's time (benchmarks/bench_sample.py) and does not touch
            the draws kept (they use ``max_tree_depth``).
        chi2_margin: local optima of the fit within this chi-square of the best
            start chains of their own.
        mode_jumps: with two or more distinct optima, let the chains jump
            between the modes (:func:`jaxspec.infer.kernel.mode_jump`: a
            Metropolis move that maps a point of one mode onto the same place of
            another), so that every chain samples every mode and the mode weights
            are fractions of the draws. The first block of draws then only
            measures each mode's centre and covariance for the jumps and is
            discarded (``settings["mode_map_draws"]``). ``False``: chains stay
            in the modes they start in (weights from Laplace estimates).
        seed: random seed (chain starts and NUTS).
        n_predictive: posterior draws used for the model band of :meth:`plot_fit`.
        unnormalized, options: (``**options``) as :func:`jaxspec.fit_binary` (flux-ratio
            mode, shared and fixed parameters, continuum degree, rv range...);
            the sampler uses the same model."""


_with_sample_args = fill_doc("sampler arguments", _DOC_ARGS)


@_with_sample_args
def sample_binary(flux, wave, err=None, ivar=None, model=None, fit=None, *, resolution=None, priors=None,
                  error_scale: bool = False, continuum: str = "marginal", num_warmup: int = 500,
                  num_samples: int = 250, num_chains: int = 4, max_samples: int | None = None,
                  chain_method: str = "auto",
                  target_accept_prob: float = 0.8, max_tree_depth: int = 8, warmup_tree_depth: int = 5,
                  chi2_margin: float = 9.0, mode_jumps: bool = True,
                  seed: int = 0, n_predictive: int = 100, unnormalized=None, **options) -> BinaryPosterior:
    """Posterior of a binary's parameters for one spectrum by NUTS.

    Args:
        flux: (P,) observed flux; wave: (P,) vacuum wavelengths [A];
            err / ivar: (P,) 1-sigma errors or inverse variances.
        fit: a :class:`~jaxspec.fit.BinaryFit` of this spectrum with the same
            model and options (default: :func:`jaxspec.fit_binary` is run).
        [sampler arguments]

    Returns:
        :class:`~jaxspec.infer.BinaryPosterior`.

    Raises:
        ValueError: bad shapes or data (as :func:`jaxspec.fit_binary`), a
            ``fit`` of another model or a batch, bad priors or settings, a
            posterior density that is not finite at the fit's solution.
    """
    if model is None:
        from jaxspec.emulator.default import default_model

        model = default_model()
    settings = _check_settings(num_warmup, num_samples, num_chains, continuum, target_accept_prob,
                               max_tree_depth, warmup_tree_depth, mode_jumps)
    max_samples = _max_samples(max_samples, num_samples)
    flux, wave, ivar = prepare_spectrum(flux, wave, err, ivar)
    if flux.ndim != 1:
        raise ValueError(f"sample_binary samples one spectrum, shape (P,); got {flux.shape}: "
                         "use sample_binary_batch")
    t0 = time.perf_counter()
    if fit is None:
        fit = fit_binary(flux, wave, ivar=ivar, model=model, resolution=resolution, unnormalized=unnormalized,
                         **options)
    options = _fit_continuum(options, fit)
    fitter = _get_fitter(model, wave, resolution, _options(model, **options), unnormalized)
    _check_fit(fit, fitter, batched=False)
    t_fit = time.perf_counter() - t0
    prior = make_prior(fitter.bm.spec, priors, error_scale=error_scale)
    sampler = _get_sampler(fitter, prior, settings)
    method = _choose_method(chain_method, num_chains)
    rng = np.random.default_rng(seed)
    d, w = jnp.asarray(flux, sampler.dtype), jnp.asarray(ivar, sampler.dtype)
    starts = _starts(sampler, fit, prior, num_chains, rng, chi2_margin, d, w)
    keys = jax.random.split(jax.random.key(seed), num_chains)
    return _sample_one(sampler, method, keys, starts, fit, wave, flux, ivar, seed=seed,
                       n_predictive=n_predictive, max_samples=max_samples, t_fit=t_fit,
                       extension_keys=lambda k: _extension_keys(seed, k, (num_chains,)))


def _sample_one(sampler, method, keys, starts, fit, wave, flux, ivar, *, seed, n_predictive, max_samples,
                t_fit, extension_keys, workers=None):
    """One spectrum's posterior: its chains, then more draws while r_hat or the ESS fail (up to
    ``max_samples``). ``extension_keys(k)`` gives the chains' keys of extension ``k``."""
    z0, inv, optima, which, modes = starts
    num_chains = len(keys)
    num_samples = sampler.settings.num_samples
    t1 = time.perf_counter()
    spent = []  # seconds of each chain program call (see _run_chains)
    trace = _run_chains(sampler, method, keys, z0, inv, np.full(num_chains, 0.5), modes, flux, ivar,
                        workers=workers, clock=spent)

    def build(tr, n_ext):
        post = BinaryPosterior.build(sampler, tr, fit=fit, wave=wave, flux=flux, ivar=ivar, optima=optima,
                                     chain_start=which, modes=modes[0], chain_method=method, seed=seed,
                                     n_predictive=n_predictive,
                                     timing={"fit_s": t_fit, "sample_s": time.perf_counter() - t1,
                                             "chains_s": float(sum(spent))})
        post.settings.update(max_samples=max_samples, extensions=n_ext, mode_map_draws=n_map, rewarms=rewarms)
        return post

    n_ext, n_map, rewarms = 0, 0, 0
    if _usable_modes(modes[0]) >= 2:
        n_map = num_samples
        # Mode-map stage: the first block's draws (chains mostly in their start modes) give each
        # mode's centre and covariance, which the jumps then use; the block itself is discarded.
        modes = _refit_modes(trace.z, modes)
        more = _run_chains(sampler, method, extension_keys(-1), trace.z[:, -1], trace.inverse_mass_matrix,
                           trace.step_size, modes, flux, ivar, extend=num_samples, workers=workers,
                           clock=spent, restep=_restep(sampler))
        trace = _after_readapt(trace, more)
    post = build(trace, n_ext)
    while _wants_more(post, num_samples, max_samples):
        modes = _refit_modes(trace.z, modes)  # unchanged with one mode
        if not rewarms and _diverging_chain(trace):
            # Re-warmup (see _diverging_chain): one metric for every chain, the step size re-adapted
            # by one dual-averaging run per chain, then the smallest for all; the draws so far
            # count as warmup.
            rewarms += 1
            warm = _run_chains(sampler, method, extension_keys(-2), trace.z[:, -1],
                               _pooled_inverse_mass(trace, modes), trace.step_size, modes, flux, ivar,
                               extend=1, workers=workers, clock=spent, restep=_restep(sampler),
                               single_window=True)
            trace = _after_readapt(trace, _smallest_step(warm))
            more = _run_chains(sampler, method, extension_keys(-3), trace.z[:, -1], trace.inverse_mass_matrix,
                               trace.step_size, modes, flux, ivar, extend=num_samples, workers=workers,
                               clock=spent)
            trace = _after_readapt(trace, more)
        else:
            n_ext += 1
            more = _run_chains(sampler, method, extension_keys(n_ext), trace.z[:, -1],
                               trace.inverse_mass_matrix, trace.step_size, modes, flux, ivar,
                               extend=num_samples, workers=workers, clock=spent)
            trace = _append(trace, more)
        post = build(trace, n_ext)
    return post


def _restep(sampler) -> int:
    """Step-size re-adaptation iterations of the mode-map stage (with jumps, mass matrix kept)."""
    return max(50, sampler.settings.num_warmup // 4)


def _after_readapt(first, stage):
    """The trace after a stage that re-adapts (the mode-map stage, a re-warmup): the stage's draws;
    the earlier draws and the stage's re-adaptation count as warmup (divergences and leapfrog
    steps)."""
    return stage._replace(
        warmup_divergences=first.warmup_divergences + stage.warmup_divergences + first.diverging.sum(axis=1),
        warmup_steps=first.warmup_steps + stage.warmup_steps + first.num_steps.sum(axis=1))


def _diverging_chain(trace) -> bool:
    """Whether a chain's draws since the last adaptation diverge more often than ``DIVERGENCE_MAX``.

    Chains that must continue (r_hat or ESS fail) are then warmed up again, once, instead: every
    chain gets the covariance of all chains' draws as its metric (one mode; with several, the
    modes' own, re-estimated from the draws), the step size is re-adapted by one dual-averaging
    run per chain (:func:`jaxspec.infer.kernel.make_runner`, ``single_window``) and the smallest is
    given to all (:func:`_smallest_step`), and the draws so far are discarded.

    Why: each chain's warmup ends with a step size set by its last 50 iterations under a mass
    matrix from its own 200; on broad posteriors (labels the spectrum barely constrains) these
    scatter. On the default-model calibration one posterior's four chains adapted 0.09, 0.47, 0.09
    and 0.30; the two large ones accepted 38 % and 52 % (target 80 %), diverged on 37 % and 20 %
    of their draws and missed the tails (rv_1 sd 3.0 and 4.0 km/s against 5.5 and 5.2), so r_hat
    stayed above 1.01 however long they ran. A continuation keeps the biased draws and the step; a
    re-warmup replaces both."""
    return bool(np.max(np.mean(np.asarray(trace.diverging), axis=1)) > DIVERGENCE_MAX)


def _smallest_step(trace):
    """``trace`` with every chain given the smallest of the chains' step sizes. A re-warmup's chains
    share one metric, so they share one step size; each adapted it to the region it happened to be
    in, and all of them will cross the hardest of those regions. (On a posterior of the default-model
    calibration, chains that kept their own re-adapted steps came out at 0.16, 0.16, 0.26 and 0.17,
    and the 0.26 chain diverged on 18 % of its draws.)"""
    return trace._replace(step_size=np.full_like(trace.step_size, np.min(trace.step_size)))


def _pooled_inverse_mass(trace, modes):
    """(C, d, d) inverse mass matrices for a re-warmup: every chain the covariance of all chains'
    draws (z). With two or more usable modes the chains run in the modes' metrics and the trace's
    matrices are returned as they are."""
    if _usable_modes(modes[0]) >= 2:
        return trace.inverse_mass_matrix
    z = np.asarray(trace.z, np.float64)
    cov = np.cov(z.reshape(-1, z.shape[-1]), rowvar=False)
    cov = cov + 1e-10 * np.mean(np.diagonal(cov)) * np.eye(len(cov))
    return np.broadcast_to(cov, (z.shape[0], *cov.shape)).copy()


def _usable_modes(modes) -> int:
    """Number of usable (finite) slots of a (K, d + 1, d) mode array."""
    return int(np.sum(np.all(np.isfinite(modes), axis=(-2, -1))))


def _refit_modes(z, modes, min_draws_per_dim=5):
    """Mode centres and covariances re-estimated from draws (C, S, d): each draw goes to its
    nearest usable mode (each in its own metric); a mode with at least ``min_draws_per_dim * d``
    draws gets their mean and covariance, the others keep theirs. Returns (C, K, d + 1, d) like
    ``modes`` (every chain the same). With fewer than two usable modes there is nothing to jump
    between, and ``modes`` comes back as it is."""
    from jaxspec.infer.kernel import pack_modes

    m = np.asarray(modes[0], np.float64)
    dim = m.shape[-1]
    idx = np.flatnonzero(np.all(np.isfinite(m), axis=(1, 2)))
    if len(idx) < 2:
        return np.array(modes, copy=True)
    flat = np.asarray(z, np.float64).reshape(-1, dim)
    d2 = np.stack([np.sum(np.linalg.solve(m[k, 1:], (flat - m[k, 0]).T) ** 2, axis=0) for k in idx], axis=1)
    label = idx[np.argmin(d2, axis=1)]
    centres, chols = m[:, 0].copy(), m[:, 1:].copy()
    for k in idx:
        x = flat[label == k]
        if len(x) < min_draws_per_dim * dim:
            continue
        cov = np.cov(x, rowvar=False) + 1e-12 * np.eye(dim)
        try:
            chols[k] = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            continue
        centres[k] = x.mean(axis=0)
    out = pack_modes(centres, chols)
    return np.broadcast_to(out, (len(modes), *out.shape)).copy()


def _fit_continuum(options: dict, fit) -> dict:
    """The options with ``continuum_degree="auto"`` replaced by the degrees the
    fit chose per segment, so that the posterior has the fit's continuum."""
    if _options(None, **options).continuum_degree != "auto":
        return options
    if fit.continuum_degree is None:
        raise ValueError("the fit does not say which continuum degree it used: pass continuum_degree=")
    return {**options, "continuum_degree": _chosen_degrees(fit.continuum_degree)}


def _check_fit(fit, fitter, *, batched):
    if bool(fit.batched) != batched:
        raise ValueError("fits must be a batch BinaryFit from fit_binary_batch" if batched else
                         "fit must be a single-spectrum BinaryFit (index a batch result: fit[i])")
    spec = fitter.bm.spec
    if tuple(fit.names) != spec.names or tuple(fit.free) != spec.free:
        raise ValueError(f"fit has parameters {fit.names} (free {fit.free}) but the model with these options "
                         f"has {spec.names} (free {spec.free}); pass the options used for the fit")


@_with_sample_args
def sample_binary_batch(flux, wave, err=None, ivar=None, model=None, fits=None, *, resolution=None,
                        priors=None, error_scale: bool = False, continuum: str = "marginal",
                        num_warmup: int = 500, num_samples: int = 250, num_chains: int = 4,
                        max_samples: int | None = None, chain_method: str = "auto",
                        chunk_size: int = 16,
                        target_accept_prob: float = 0.8, max_tree_depth: int = 8, warmup_tree_depth: int = 5,
                        chi2_margin: float = 9.0, mode_jumps: bool = True,
                        seed: int = 0, n_predictive: int = 100, unnormalized=None,
                        **options) -> list[BinaryPosterior]:
    """Posteriors of many spectra on one grid, compiled once.

    How they run (``chain_method``):

    * ``"vectorized"`` or ``"sequential"`` (chains within each spectrum): one
      compiled program ``vmap``-ped over spectra, ``chunk_size`` at a time
      (the last chunk padded with copies). The way for a GPU or TPU, where a
      batch costs about as much as one spectrum.
    * ``"threads"``: every chain of every spectrum is one call of the same
      compiled single-chain program; these calls go to one pool of a Python
      thread per usable CPU core, shared by twice as many spectra in
      progress (so that no core idles while one spectrum's slowest chain or
      last extension runs). The way for a CPU: a vectorized
      step costs the deepest tree of all its chains and spectra, and XLA runs
      each small program on one core.
    * ``"auto"`` (default): ``"threads"`` on a CPU with two or more usable
      cores, else ``"vectorized"``.

    Every posterior carries its own diagnostics (r_hat, ESS, divergences,
    modes, flags), and continues on its own while they fail (``max_samples``).

    Args:
        flux: (N, P) observed flux (continuum need not be normalized); wave:
            (P,) vacuum wavelengths [A]; err / ivar: (N, P) 1-sigma errors or
            inverse variances.
        fits: a batch :class:`~jaxspec.fit.BinaryFit` of these spectra (default:
            :func:`jaxspec.fit_binary_batch` is run).
        chain_method: ``"auto"``, ``"threads"``, ``"vectorized"`` or ``"sequential"`` (above).
        chunk_size: spectra per compiled call (vectorized and sequential); the
            spectra of a chunk that need more draws (``max_samples``) continue
            together, padded to the chunk size.
        [sampler arguments]

    Returns:
        A list of N :class:`~jaxspec.infer.BinaryPosterior`; each one's
        ``timing["sample_s"]`` is its chunk's wall time (with threads: the
        whole run's) divided by the chunk's spectra, extensions included;
        with threads, ``timing["chains_s"]`` is the core-seconds its own
        chains took (which spectra were costly).

    Raises:
        ValueError: as :func:`sample_binary`, and flux not (N, P).
    """
    if model is None:
        from jaxspec.emulator.default import default_model

        model = default_model()
    settings = _check_settings(num_warmup, num_samples, num_chains, continuum, target_accept_prob,
                               max_tree_depth, warmup_tree_depth, mode_jumps)
    max_samples = _max_samples(max_samples, num_samples)
    if chain_method not in ("auto", "threads", "vectorized", "sequential"):
        raise ValueError(f"sample_binary_batch runs chains 'auto', 'threads', 'vectorized' or 'sequential', "
                         f"got {chain_method!r}")
    if chain_method == "auto":
        chain_method = "threads" if _choose_method("auto", 2) == "threads" else "vectorized"
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    flux, wave, ivar = prepare_spectrum(flux, wave, err, ivar)
    if flux.ndim != 2:
        raise ValueError(f"sample_binary_batch needs an (N, P) stack, got shape {flux.shape}")
    n = flux.shape[0]
    t0 = time.perf_counter()
    if fits is None:
        fits = fit_binary_batch(flux, wave, ivar=ivar, model=model, resolution=resolution,
                                unnormalized=unnormalized, **options)
    if len(fits) != n:
        raise ValueError(f"fits has {len(fits)} spectra, flux {n}")
    if _options(None, **options).continuum_degree == "auto" and fits.continuum_degree is not None:
        # the continuum each fit chose: spectra that chose the same degrees are sampled together
        deg = np.asarray(fits.continuum_degree)
        groups = {}
        for i, row in enumerate(map(tuple, deg.tolist())):
            groups.setdefault(row, []).append(i)
        if len(groups) > 1:
            out = [None] * n
            for row, idx in groups.items():
                posts = sample_binary_batch(
                    flux[idx], wave, ivar=ivar[idx], model=model, fits=fits[np.asarray(idx)], resolution=resolution,
                    priors=priors, error_scale=error_scale, continuum=continuum, num_warmup=num_warmup,
                    num_samples=num_samples, num_chains=num_chains, max_samples=max_samples,
                    chain_method=chain_method, chunk_size=chunk_size, target_accept_prob=target_accept_prob,
                    max_tree_depth=max_tree_depth, warmup_tree_depth=warmup_tree_depth, chi2_margin=chi2_margin,
                    mode_jumps=mode_jumps, seed=seed, n_predictive=n_predictive, unnormalized=unnormalized,
                    **{**options, "continuum_degree": _chosen_degrees(row)})
                for i, p in zip(idx, posts, strict=True):
                    out[i] = p
            return out
        options = _fit_continuum(options, fits[0])
    fitter = _get_fitter(model, wave, resolution, _options(model, **options), unnormalized)
    _check_fit(fits, fitter, batched=True)
    t_fit = (time.perf_counter() - t0) / n
    prior = make_prior(fitter.bm.spec, priors, error_scale=error_scale)
    sampler = _get_sampler(fitter, prior, settings)
    rng = np.random.default_rng(seed)
    starts = []
    for i in range(n):
        d, w = jnp.asarray(flux[i], sampler.dtype), jnp.asarray(ivar[i], sampler.dtype)
        starts.append(_starts(sampler, fits[i], prior, num_chains, rng, chi2_margin, d, w))
    keys = jax.random.split(jax.random.key(seed), n * num_chains).reshape(n, num_chains)
    if chain_method == "threads":
        return _batch_threads(sampler, keys, starts, fits, wave, flux, ivar, seed=seed,
                              n_predictive=n_predictive, max_samples=max_samples, t_fit=t_fit)
    chunk = max(1, min(int(chunk_size), n))
    out = []
    for a in range(0, n, chunk):
        idx = np.minimum(np.arange(a, a + chunk), n - 1)
        run = sampler.runner(chain_method, True, jumps=any(_usable_modes(starts[i][4][0]) >= 2 for i in idx))
        z0, inv, jm = (jnp.asarray(np.stack([starts[i][k] for i in idx]), sampler.dtype) for k in (0, 1, 4))
        args = (keys[idx], z0, inv,
                jnp.full((chunk, num_chains), 0.5, sampler.dtype), jm, jnp.asarray(flux[idx], sampler.dtype),
                jnp.asarray(ivar[idx], sampler.dtype))
        t1 = time.perf_counter()
        trace = jax.tree_util.tree_map(np.asarray, jax.device_get(run(*args)))
        members = list(range(a, min(a + chunk, n)))
        traces = {i: type(trace)(*(x[j] for x in trace)) for j, i in enumerate(members)}
        modes = {i: starts[i][4] for i in members}

        n_ext = {i: 0 for i in members}
        rewarms = {i: 0 for i in members}

        def build(i, t1=t1, members=members, traces=traces, modes=modes, n_ext=n_ext, rewarms=rewarms):
            post = BinaryPosterior.build(
                sampler, traces[i], fit=fits[i], wave=wave, flux=flux[i], ivar=ivar[i], optima=starts[i][2],
                chain_start=starts[i][3], modes=modes[i][0], chain_method=chain_method, seed=seed,
                n_predictive=n_predictive,
                timing={"fit_s": t_fit, "sample_s": (time.perf_counter() - t1) / len(members)})
            n_map = settings.num_samples if _usable_modes(modes[i][0]) >= 2 else 0
            post.settings.update(max_samples=max_samples, extensions=n_ext[i], mode_map_draws=n_map,
                                 rewarms=rewarms[i])
            return post

        def extend(group, k, discard, rewarm=False, modes=modes, traces=traces):
            """``num_samples`` more draws of the spectra in ``group`` (padded to the chunk), their
            modes refitted first; ``discard``: the new draws replace the old (the mode-map stage);
            ``rewarm``: a re-warmup first, as in sample_binary (see :func:`_diverging_chain`)."""
            for i in group:
                modes[i] = _refit_modes(traces[i].z, modes[i])
            pad = [group[min(j, len(group) - 1)] for j in range(chunk)]
            jumps = any(_usable_modes(modes[i][0]) >= 2 for i in group)

            def call(k, n_draw, restep, inv_mass, single_window=False):
                ext = (_extension_keys(seed, k, (chunk, num_chains)),
                       jnp.asarray(np.stack([traces[i].z[:, -1] for i in pad]), sampler.dtype),
                       jnp.asarray(np.stack(inv_mass), sampler.dtype),
                       jnp.asarray(np.stack([traces[i].step_size for i in pad]), sampler.dtype),
                       jnp.asarray(np.stack([modes[i] for i in pad]), sampler.dtype),
                       jnp.asarray(flux[pad], sampler.dtype), jnp.asarray(ivar[pad], sampler.dtype))
                out = jax.tree_util.tree_map(np.asarray, jax.device_get(
                    sampler.runner(chain_method, True, n_draw, restep, jumps, single_window)(*ext)))
                return [type(out)(*(x[j] for x in out)) for j in range(len(group))]

            if rewarm:
                warm = call(k, 1, _restep(sampler), [_pooled_inverse_mass(traces[i], modes[i]) for i in pad],
                            single_window=True)
                for i, part in zip(group, warm, strict=True):
                    traces[i] = _after_readapt(traces[i], _smallest_step(part))
                k, discard = k - 1, True
            restep = _restep(sampler) if discard and not rewarm else 0
            more = call(k, settings.num_samples, restep, [traces[i].inverse_mass_matrix for i in pad])
            for i, part in zip(group, more, strict=True):
                traces[i] = _after_readapt(traces[i], part) if discard else _append(traces[i], part)

        # Mode-map stage (as in sample_binary): spectra with several modes re-estimate them from the
        # first block, which is then discarded.
        multi = [i for i in members if _usable_modes(modes[i][0]) >= 2]
        if multi:
            extend(multi, -1, True)
        posts = {i: build(i) for i in members}
        rounds = 0
        while True:
            need = [i for i in members if _wants_more(posts[i], settings.num_samples, max_samples)]
            if not need:
                break
            rounds += 1
            again = [i for i in need if not rewarms[i] and _diverging_chain(traces[i])]
            if again:  # a re-warmup, as in sample_binary
                extend(again, -2, False, rewarm=True)
                rewarms.update({i: 1 for i in again})
            more = [i for i in need if i not in again]
            if more:
                extend(more, rounds, False)
                n_ext.update({i: n_ext[i] + 1 for i in more})
            for i in need:
                posts[i] = build(i)
        for i in members:  # every spectrum of the chunk shares the chunk's wall time
            posts[i].timing["sample_s"] = (time.perf_counter() - t1) / len(members)
            out.append(posts[i])
    return out


def _batch_threads(sampler, keys, starts, fits, wave, flux, ivar, *, seed, n_predictive, max_samples, t_fit):
    """:func:`sample_binary_batch` with ``chain_method="threads"``: spectra spread over the cores."""
    from concurrent.futures import ThreadPoolExecutor

    from jaxspec._machine import usable_cores

    n, num_chains = keys.shape
    t0 = time.perf_counter()

    def one(i, workers):
        return _sample_one(sampler, "threads", keys[i], starts[i], fits[i], wave, flux[i], ivar[i], seed=seed,
                           n_predictive=n_predictive, max_samples=max_samples, t_fit=t_fit, workers=workers,
                           extension_keys=lambda k: _extension_keys(seed, k, (n, num_chains))[i])

    # Each chain program compiles on its first use, once: _run_chains holds a lock while it compiles.
    cores = usable_cores()
    if cores == 1 or n == 1:
        posts = [one(i, cores) for i in range(n)]
    else:
        # Every spectrum's chain calls go to one pool of a thread per core, and twice as many spectra
        # as cores are in progress, so that no core waits while a spectrum's slowest chain finishes,
        # and the last spectra's chains still spread over all cores. Each chain's draws depend only
        # on its keys, so the draws are those of a one-thread run.
        with ThreadPoolExecutor(max_workers=cores) as chains, \
                ThreadPoolExecutor(max_workers=min(n, 2 * cores)) as spectra:
            posts = list(spectra.map(lambda i: one(i, chains), range(n)))
    wall = time.perf_counter() - t0
    for p in posts:
        p.timing["sample_s"] = wall / n
    return posts
