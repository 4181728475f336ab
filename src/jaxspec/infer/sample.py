"""``sample_binary`` and ``sample_binary_batch``: NUTS posteriors of SB2 parameters.

Per spectrum: a fit (:func:`jaxspec.fit_binary`, unless one is given) starts
the chains at its best solution and its distinct local optima, and its
covariance is the initial inverse mass matrix (:mod:`jaxspec.infer.init`);
NumPyro's NUTS then samples the posterior of :mod:`jaxspec.infer.model` in
the prior windows' unconstrained space (:mod:`jaxspec.infer.kernel`).
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
in the same way (each thread runs its spectrum's chains one after the other).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.fit.binary import _get_fitter, _options, fit_binary, fit_binary_batch, prepare_spectrum
from jaxspec.fit.continuum import solve_continuum
from jaxspec.infer.init import initial_state
from jaxspec.infer.kernel import CHAIN_METHODS, make_runner
from jaxspec.infer.model import CONTINUUM_MODES, log_likelihood, make_prior
from jaxspec.infer.posterior import FLAGS, BinaryPosterior

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
        self._predict = jax.jit(jax.vmap(self._predict_one, in_axes=(0, None, None)))
        self._components = jax.jit(self._components_one)

    def _log_density(self, z, flux, ivar):
        def loglike(theta):
            return log_likelihood(self.bm, self.design, theta, flux, ivar, continuum=self.settings.continuum)

        return self.prior.log_density(z, loglike)

    def runner(self, method: str, batched: bool, extend: int = 0):
        """The chain program: warmup then ``num_samples`` draws, or (``extend > 0``) ``extend`` more
        draws from warmed-up chains (no adaptation: their step size and mass matrix as given)."""
        key = (method, batched, int(extend))
        if key not in self._runs:
            s = self.settings
            n_warm, n_draw = (0, int(extend)) if extend else (s.num_warmup, s.num_samples)
            run = make_runner(self._log_density, num_warmup=n_warm, num_samples=n_draw,
                              dense_mass=s.dense_mass, target_accept_prob=s.target_accept_prob,
                              max_tree_depth=s.max_tree_depth, chain_method=method,
                              warmup_tree_depth=s.warmup_tree_depth)
            if batched:
                run = jax.vmap(run, in_axes=(0, 0, 0, 0, 0, 0))
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
                    warmup_tree_depth=5):
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
                     continuum, int(warmup_tree_depth))


def _run_chains(sampler, method, keys, z0, inv_mass, step, flux, ivar, extend=0, workers=None):
    """One spectrum's chains as numpy arrays (see :class:`~jaxspec.infer.kernel.ChainTrace`);
    ``extend > 0``: that many further draws of warmed-up chains (see :meth:`_Sampler.runner`).
    ``method="threads"``: one chain per call, over ``workers`` threads (default: one per usable
    core; 1: one chain after the other in this thread)."""
    dt = sampler.dtype
    args = [jnp.asarray(a, dt) for a in (z0, inv_mass, step)]
    d, w = jnp.asarray(flux, dt), jnp.asarray(ivar, dt)
    if method != "threads":
        out = sampler.runner(method, False, extend)(keys, *args, d, w)
        return jax.tree_util.tree_map(np.asarray, jax.device_get(out))
    from concurrent.futures import ThreadPoolExecutor

    from jaxspec._machine import usable_cores

    n = len(keys)
    workers = max(1, min(usable_cores() if workers is None else int(workers), n))

    def one(c):
        return (keys[c:c + 1], *(a[c:c + 1] for a in args), d, w)

    # One chain per call, so that each chain builds trees of its own size (vectorized chains all
    # pay for the deepest tree); compiled once, ahead of the threads (two threads calling a fresh
    # jit function may both compile it).
    key = ("threads", d.shape, str(d.dtype), int(extend))
    if key not in sampler._runs:
        sampler._runs[key] = sampler.runner("vectorized", False, extend).lower(*one(0)).compile()
    run = sampler._runs[key]

    def work(c):
        return jax.device_get(run(*one(c)))

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
           for f in ("z", "log_density", "diverging", "num_steps", "accept_prob")}
    return trace._replace(**cat)


def _extension_keys(seed, k, shape):
    base = jax.random.fold_in(jax.random.key(seed), 1000 + k)
    return jax.random.split(base, int(np.prod(shape))).reshape(shape)


def _max_samples(max_samples, num_samples):
    n = 6 * int(num_samples) if max_samples is None else int(max_samples)
    if n < int(num_samples):
        raise ValueError(f"max_samples ({n}) must be >= num_samples ({num_samples})")
    return n


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
    return z0, inv, optima, which


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
        max_samples: draws per chain at most (default ``6 * num_samples``: 1,500).
            While the posterior's r_hat (within modes) exceeds 1.01 or a bulk
            ESS is below 400, the warmed-up chains continue by another
            ``num_samples`` draws (same step size and mass matrix; one more
            compiled program), up to ``max_samples``; ``max_samples =
            num_samples`` turns this off. ``settings["extensions"]`` says how
            many blocks were added.
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
        seed: random seed (chain starts and NUTS).
        n_predictive: posterior draws used for the model band of :meth:`plot_fit`.
        unnormalized, **options: as :func:`jaxspec.fit_binary` (flux-ratio
            mode, shared and fixed parameters, continuum degree, rv range...);
            the sampler uses the same model."""


def sample_binary(flux, wave, err=None, ivar=None, model=None, fit=None, *, resolution=None, priors=None,
                  error_scale: bool = False, continuum: str = "marginal", num_warmup: int = 500,
                  num_samples: int = 250, num_chains: int = 4, max_samples: int | None = None,
                  chain_method: str = "auto",
                  target_accept_prob: float = 0.8, max_tree_depth: int = 8, warmup_tree_depth: int = 5,
                  chi2_margin: float = 9.0,
                  seed: int = 0, n_predictive: int = 100, unnormalized=None, **options) -> BinaryPosterior:
    """Posterior of a binary's parameters for one spectrum by NUTS.

    Args:
        flux: (P,) observed flux; wave: (P,) vacuum wavelengths [A];
            err / ivar: (P,) 1-sigma errors or inverse variances.
        fit: a :class:`~jaxspec.fit.BinaryFit` of this spectrum with the same
            model and options (default: :func:`jaxspec.fit_binary` is run).""" + _DOC_ARGS + """

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
                               max_tree_depth, warmup_tree_depth)
    max_samples = _max_samples(max_samples, num_samples)
    flux, wave, ivar = prepare_spectrum(flux, wave, err, ivar)
    if flux.ndim != 1:
        raise ValueError(f"sample_binary samples one spectrum, shape (P,); got {flux.shape}: "
                         "use sample_binary_batch")
    t0 = time.perf_counter()
    fitter = _get_fitter(model, wave, resolution, _options(model, **options), unnormalized)
    if fit is None:
        fit = fit_binary(flux, wave, ivar=ivar, model=model, resolution=resolution, unnormalized=unnormalized,
                         **options)
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
    z0, inv, optima, which = starts
    num_chains = len(keys)
    num_samples = sampler.settings.num_samples
    t1 = time.perf_counter()
    trace = _run_chains(sampler, method, keys, z0, inv, np.full(num_chains, 0.5), flux, ivar, workers=workers)

    def build(tr, n_ext):
        post = BinaryPosterior.build(sampler, tr, fit=fit, wave=wave, flux=flux, ivar=ivar, optima=optima,
                                     chain_start=which, chain_method=method, seed=seed,
                                     n_predictive=n_predictive,
                                     timing={"fit_s": t_fit, "sample_s": time.perf_counter() - t1})
        post.settings.update(max_samples=max_samples, extensions=n_ext)
        return post

    post, n_ext = build(trace, 0), 0
    while post.flag & _NEEDS_MORE and trace.z.shape[1] + num_samples <= max_samples:
        n_ext += 1
        more = _run_chains(sampler, method, extension_keys(n_ext), trace.z[:, -1], trace.inverse_mass_matrix,
                           trace.step_size, flux, ivar, extend=num_samples, workers=workers)
        trace = _append(trace, more)
        post = build(trace, n_ext)
    return post


def _check_fit(fit, fitter, *, batched):
    if bool(fit.batched) != batched:
        raise ValueError("fits must be a batch BinaryFit from fit_binary_batch" if batched else
                         "fit must be a single-spectrum BinaryFit (index a batch result: fit[i])")
    spec = fitter.bm.spec
    if tuple(fit.names) != spec.names or tuple(fit.free) != spec.free:
        raise ValueError(f"fit has parameters {fit.names} (free {fit.free}) but the model with these options "
                         f"has {spec.names} (free {spec.free}); pass the options used for the fit")


def sample_binary_batch(flux, wave, err=None, ivar=None, model=None, fits=None, *, resolution=None,
                        priors=None, error_scale: bool = False, continuum: str = "marginal",
                        num_warmup: int = 500, num_samples: int = 250, num_chains: int = 4,
                        max_samples: int | None = None, chain_method: str = "auto",
                        chunk_size: int = 16,
                        target_accept_prob: float = 0.8, max_tree_depth: int = 8, warmup_tree_depth: int = 5,
                        chi2_margin: float = 9.0,
                        seed: int = 0, n_predictive: int = 100, unnormalized=None,
                        **options) -> list[BinaryPosterior]:
    """Posteriors of many spectra on one grid, compiled once.

    How they run (``chain_method``):

    * ``"vectorized"`` or ``"sequential"`` (chains within each spectrum): one
      compiled program ``vmap``-ped over spectra, ``chunk_size`` at a time
      (the last chunk padded with copies). The way for a GPU or TPU, where a
      batch costs about as much as one spectrum.
    * ``"threads"``: every chain of every spectrum is one call of the same
      compiled single-chain program; the spectra are spread over one Python
      thread per usable CPU core (each thread runs its spectrum's chains one
      after the other, then its extensions). The way for a CPU: a vectorized
      step costs the deepest tree of all its chains and spectra, and XLA runs
      each small program on one core.
    * ``"auto"`` (default): ``"threads"`` on a CPU with two or more usable
      cores, else ``"vectorized"``.

    Every posterior carries its own diagnostics (r_hat, ESS, divergences,
    modes, flags), and continues on its own while they fail (``max_samples``).

    Args:
        flux: (N, P) observed flux; wave: (P,); err / ivar: (N, P).
        fits: a batch :class:`~jaxspec.fit.BinaryFit` of these spectra (default:
            :func:`jaxspec.fit_binary_batch` is run).
        chain_method: ``"auto"``, ``"threads"``, ``"vectorized"`` or ``"sequential"`` (above).
        chunk_size: spectra per compiled call (vectorized and sequential); the
            spectra of a chunk that need more draws (``max_samples``) continue
            together, padded to the chunk size.""" + _DOC_ARGS + """

    Returns:
        A list of N :class:`~jaxspec.infer.BinaryPosterior`; each one's
        ``timing["sample_s"]`` is its chunk's wall time (with threads: the
        whole run's) divided by the chunk's spectra, extensions included.

    Raises:
        ValueError: as :func:`sample_binary`, and flux not (N, P).
    """
    if model is None:
        from jaxspec.emulator.default import default_model

        model = default_model()
    settings = _check_settings(num_warmup, num_samples, num_chains, continuum, target_accept_prob,
                               max_tree_depth, warmup_tree_depth)
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
    fitter = _get_fitter(model, wave, resolution, _options(model, **options), unnormalized)
    if fits is None:
        fits = fit_binary_batch(flux, wave, ivar=ivar, model=model, resolution=resolution,
                                unnormalized=unnormalized, **options)
    _check_fit(fits, fitter, batched=True)
    if len(fits) != n:
        raise ValueError(f"fits has {len(fits)} spectra, flux {n}")
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
    run = sampler.runner(chain_method, True)
    chunk = max(1, min(int(chunk_size), n))
    out = []
    for a in range(0, n, chunk):
        idx = np.minimum(np.arange(a, a + chunk), n - 1)
        z0, inv = (jnp.asarray(np.stack([starts[i][k] for i in idx]), sampler.dtype) for k in (0, 1))
        args = (keys[idx], z0, inv,
                jnp.full((chunk, num_chains), 0.5, sampler.dtype), jnp.asarray(flux[idx], sampler.dtype),
                jnp.asarray(ivar[idx], sampler.dtype))
        t1 = time.perf_counter()
        trace = jax.tree_util.tree_map(np.asarray, jax.device_get(run(*args)))
        members = list(range(a, min(a + chunk, n)))
        traces = {i: type(trace)(*(x[j] for x in trace)) for j, i in enumerate(members)}

        def build(i, n_ext, t1=t1, members=members, traces=traces):
            post = BinaryPosterior.build(
                sampler, traces[i], fit=fits[i], wave=wave, flux=flux[i], ivar=ivar[i], optima=starts[i][2],
                chain_start=starts[i][3], chain_method=chain_method, seed=seed, n_predictive=n_predictive,
                timing={"fit_s": t_fit, "sample_s": (time.perf_counter() - t1) / len(members)})
            post.settings.update(max_samples=max_samples, extensions=n_ext)
            return post

        posts = {i: build(i, 0) for i in members}
        n_ext = 0
        while True:
            need = [i for i in members if posts[i].flag & _NEEDS_MORE
                    and traces[i].z.shape[1] + settings.num_samples <= max_samples]
            if not need:
                break
            n_ext += 1
            pad = [need[min(j, len(need) - 1)] for j in range(chunk)]
            ext = (_extension_keys(seed, n_ext, (chunk, num_chains)),
                   jnp.asarray(np.stack([traces[i].z[:, -1] for i in pad]), sampler.dtype),
                   jnp.asarray(np.stack([traces[i].inverse_mass_matrix for i in pad]), sampler.dtype),
                   jnp.asarray(np.stack([traces[i].step_size for i in pad]), sampler.dtype),
                   jnp.asarray(flux[pad], sampler.dtype), jnp.asarray(ivar[pad], sampler.dtype))
            more = jax.tree_util.tree_map(np.asarray, jax.device_get(
                sampler.runner(chain_method, True, settings.num_samples)(*ext)))
            for j, i in enumerate(need):
                traces[i] = _append(traces[i], type(more)(*(x[j] for x in more)))
            for i in need:
                posts[i] = build(i, n_ext)
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

    def one(i):
        return _sample_one(sampler, "threads", keys[i], starts[i], fits[i], wave, flux[i], ivar[i], seed=seed,
                           n_predictive=n_predictive, max_samples=max_samples, t_fit=t_fit, workers=1,
                           extension_keys=lambda k: _extension_keys(seed, k, (n, num_chains))[i])

    # Compile the chain programs (warmup + draws, and an extension) once, ahead of the threads.
    key = ("threads", flux.shape[1:], str(jnp.dtype(sampler.dtype)), 0)
    if key not in sampler._runs:
        args = (keys[0, :1], *(jnp.asarray(a[:1], sampler.dtype) for a in starts[0][:2]),
                jnp.full(1, 0.5, sampler.dtype), jnp.asarray(flux[0], sampler.dtype),
                jnp.asarray(ivar[0], sampler.dtype))
        sampler._runs[key] = sampler.runner("vectorized", False).lower(*args).compile()
    workers = max(1, min(usable_cores(), n))
    if workers == 1:
        posts = [one(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            posts = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    for p in posts:
        p.timing["sample_s"] = wall / n
    return posts
