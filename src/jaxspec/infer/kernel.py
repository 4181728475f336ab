"""A pure NUTS runner over NumPyro's kernel: warmup and sampling of one chain as one function.

:func:`make_runner` returns ``run(keys, z0, inverse_mass, step_size, flux, ivar)``
for ``num_chains`` chains of one spectrum, built on
``numpyro.infer.hmc.hmc(potential_fn_gen=...)`` (NumPyro's NUTS with its
dual-averaging step size and windowed mass-matrix adaptation), run on
``z`` divided by the square root of the given inverse mass matrix's diagonal
(see ``one_chain``: NumPyro's covariance shrinkage would otherwise swamp
tight directions); the trace, step sizes and mass matrices it returns are
those of ``z``. Because the
data enter as arguments, the same function ``vmap``-s over spectra
(:func:`jaxspec.infer.sample_binary_batch`), and nothing is compiled twice
for same-shaped data.

Chains run

* ``"vectorized"``: ``vmap`` over chains in one program (each NUTS step
  costs the longest tree among the chains, but model evaluations batch:
  a matrix-matrix product instead of one matrix-vector product per chain);
* ``"sequential"``: ``lax.map`` over chains in one program (each chain its
  own tree sizes, one model evaluation at a time);
* ``"parallel"``: ``pmap`` over local devices (needs ``jax.local_device_count()
  >= num_chains``; on a CPU set ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
  before JAX is imported).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CHAIN_METHODS", "ChainTrace", "jump_radius", "make_runner", "metric_jump", "mode_jump",
           "mode_region", "pack_modes", "unpack_modes"]

CHAIN_METHODS = ("vectorized", "sequential", "parallel")


class ChainTrace(NamedTuple):
    """What one run returns; leading axes (chain,) or (chain, draw).

    Attributes:
        z: (C, S, d) unconstrained draws.
        log_density: (C, S) log posterior density at the draws (unconstrained space).
        diverging: (C, S) divergent transitions while sampling.
        num_steps: (C, S) leapfrog steps per transition.
        accept_prob: (C, S) mean acceptance probability of the transition.
        step_size: (C,) adapted step size.
        inverse_mass_matrix: (C, d, d) or (C, d) adapted inverse mass matrix.
        warmup_divergences: (C,) divergent transitions during warmup.
        warmup_steps: (C,) leapfrog steps (gradient evaluations) during warmup.
        jumped: (C, S) an accepted mode jump preceded the draw (see :func:`mode_jump`).
    """

    z: jax.Array
    log_density: jax.Array
    diverging: jax.Array
    num_steps: jax.Array
    accept_prob: jax.Array
    step_size: jax.Array
    inverse_mass_matrix: jax.Array
    warmup_divergences: jax.Array
    warmup_steps: jax.Array
    jumped: jax.Array


def jump_radius(dim: int, coverage: float = 0.99) -> float:
    """Radius (in the mode's standard deviations) of the region around a mode centre that
    :func:`mode_jump` moves from and to: the ``coverage`` quantile of a chi distribution with
    ``dim`` degrees of freedom, so a Gaussian mode's draws fall inside with that probability."""
    from scipy.stats import chi2

    return float(np.sqrt(chi2.ppf(coverage, int(dim))))


def pack_modes(centres, chols):
    """One (K, d + 1, d) array of K modes for :func:`make_runner`: row 0 of each the centre
    (unconstrained space), rows 1.. the lower Cholesky factor of its covariance. Slots of NaN
    are unused."""
    return np.concatenate([np.asarray(centres)[:, None, :], np.asarray(chols)], axis=1)


def unpack_modes(modes):
    """``(centres (K, d), chols (K, d, d), usable (K,) bool)`` of a :func:`pack_modes` array."""
    centres, chols = modes[..., 0, :], modes[..., 1:, :]
    usable = jnp.all(jnp.isfinite(modes), axis=(-2, -1))
    zero = jnp.zeros_like(centres)
    eye = jnp.broadcast_to(jnp.eye(centres.shape[-1], dtype=modes.dtype), chols.shape)
    centres = jnp.where(usable[..., None], centres, zero)
    return centres, jnp.where(usable[..., None, None], chols, eye), usable


def _whiten(z, centres, chols):
    """(K, d) ``L_k^-1 (z - c_k)`` for every mode."""
    return jax.vmap(lambda c, L: jax.scipy.linalg.solve_triangular(L, z - c, lower=True))(centres, chols)


def mode_region(z, centres, chols, usable, radius):
    """``(k, inside)``: the usable mode nearest to ``z`` in its own metric and whether ``z`` lies
    within ``radius`` of it (the region of mode k: points nearer to k than to any other mode,
    in each mode's standard deviations, and within ``radius`` of it)."""
    d2 = jnp.where(usable, jnp.sum(_whiten(z, centres, chols) ** 2, axis=-1), jnp.inf)
    k = jnp.argmin(d2)
    return k, d2[k] < radius**2


def mode_jump(key, z, log_p, modes, radius, log_density_and_grad):
    """One Metropolis "mode jump" (darting) move between the regions of the modes.

    Mode k has a centre ``c_k`` and a covariance ``L_k L_k^T`` (the Laplace
    approximation at that optimum); its region is that of :func:`mode_region`.
    From a point in region k the move picks one of the other usable modes j
    uniformly and proposes its affine image

        z' = c_j + L_j L_k^-1 (z - c_k),

    the same place relative to mode j's shape (a mirrored pair of stars has
    mirrored correlations, which a translation would not follow). The move is
    rejected unless z' lies in region j (then the reverse move, from z' back to
    z, is proposed with the same probability), and accepted with
    ``min(1, p(z') |L_j| / (p(z) |L_k|))``: the maps are inverse to each other,
    so this keeps the posterior invariant (detailed balance). Outside every
    region, or with fewer than two usable modes, nothing moves. Between modes
    that NUTS cannot cross, chains then visit each mode in proportion to its
    posterior mass: the mode weights are measured by the draws and r_hat over
    all chains means what it says.

    Args:
        key: PRNG key.
        z: (d,) current point; log_p: its log density.
        modes: (K, d + 1, d) from :func:`pack_modes`; radius: region radius.
        log_density_and_grad: ``z -> (log p, d log p / dz)``.

    Returns:
        ``(accepted, z_new, log_p_new, grad_new)``; z_new, log_p_new and grad_new
        are only meaningful where accepted.
    """
    k_pick, k_acc = jax.random.split(key)
    centres, chols, usable = unpack_modes(modes)
    k, inside = mode_region(z, centres, chols, usable, radius)
    others = usable & (jnp.arange(centres.shape[0]) != k)
    j = jax.random.categorical(k_pick, jnp.where(others, 0.0, -jnp.inf))
    u = jax.scipy.linalg.solve_triangular(chols[k], z - centres[k], lower=True)
    z_new = centres[j] + chols[j] @ u
    j_new, inside_new = mode_region(z_new, centres, chols, usable, radius)
    log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(chols[j])) / jnp.abs(jnp.diagonal(chols[k]))))
    lp_new, g_new = log_density_and_grad(z_new)
    log_u = jnp.log(jax.random.uniform(k_acc, dtype=z.dtype))
    accepted = (inside & jnp.any(others) & inside_new & (j_new == j) & jnp.isfinite(lp_new)
                & jnp.all(jnp.isfinite(g_new)) & (log_u < lp_new - log_p + log_det))
    return accepted, z_new, lp_new, g_new


def metric_jump(key, u, k, log_p, modes, log_density_and_grad):
    """One Metropolis move of the mode label in the mode-standardised coordinates of
    :func:`make_runner` (``mode_metric=True``).

    The chain's state is ``(u, k)``: the point ``z = c_k + L_k u`` in the coordinates of
    mode k (centre ``c_k``, covariance ``L_k L_k^T``), with the joint target

        pi(u, k)  proportional to  p(c_k + L_k u) |L_k|.

    Every label maps u to a point z with the density p(z) (the Jacobian ``|L_k|`` of the map
    cancels), so the z of the draws follows the posterior p exactly, whatever the modes are. NUTS
    moves u at fixed k; this move proposes another usable label j uniformly (a symmetric
    proposal) at fixed u, i.e. ``z' = c_j + L_j u`` (the same place relative to mode j's shape),
    and accepts with ``min(1, p(z') |L_j| / (p(z) |L_k|))``. No region test is needed: any
    (u, k) is a valid state. With fewer than two usable modes nothing moves.

    Args:
        key: PRNG key; u: (d,) standardised point; k: its label (int);
        log_p: ``log p(c_k + L_k u)``; modes: (K, d + 1, d) from :func:`pack_modes`;
        log_density_and_grad: ``z -> (log p, d log p / dz)``.

    Returns:
        ``(accepted, j, log_p_new, grad_u_new)``: the proposed label, the log density there and
        the gradient of log p with respect to u at the new label (``L_j^T dlogp/dz``); only
        meaningful where accepted.
    """
    k_pick, k_acc = jax.random.split(key)
    centres, chols, usable = unpack_modes(modes)
    others = usable & (jnp.arange(centres.shape[0]) != k)
    j = jax.random.categorical(k_pick, jnp.where(others, 0.0, -jnp.inf))
    lp_new, g_z = log_density_and_grad(centres[j] + chols[j] @ u)
    log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(chols[j])) / jnp.abs(jnp.diagonal(chols[k]))))
    log_u = jnp.log(jax.random.uniform(k_acc, dtype=u.dtype))
    accepted = (jnp.any(others) & jnp.isfinite(lp_new) & jnp.all(jnp.isfinite(g_z))
                & (log_u < lp_new - log_p + log_det))
    return accepted, j, lp_new, chols[j].T @ g_z


def _single_window(target_accept_prob: float):
    """Step-size adaptation by one dual-averaging run over a whole warmup (mass matrix fixed).

    NumPyro's warmup restarts dual averaging at the end of every mass-matrix window, so the final
    step size comes from the last window alone: 50 iterations of a 500-iteration warmup, 12 of a
    125-iteration one. Returns ``(init(step) -> da, update(state, da) -> (state, da), finish(state,
    da) -> state)`` for a NumPyro HMC state built without adaptation: ``update`` feeds the
    transition's acceptance probability to the averaging and sets the next step size, ``finish``
    sets the averaged one (as NumPyro does at the end of its warmup)."""
    from numpyro.infer.hmc_util import dual_averaging

    da_init, da_update = dual_averaging()

    def init(step_size):
        return da_init(jnp.log(10.0 * step_size))  # NumPyro's prox centre

    def _set(state, log_step):
        finfo = jnp.finfo(state.adapt_state.step_size.dtype)
        step = jnp.clip(jnp.exp(log_step), finfo.tiny, finfo.max).astype(state.adapt_state.step_size.dtype)
        return state._replace(adapt_state=state.adapt_state._replace(step_size=step))

    def update(state, da):
        da = da_update(target_accept_prob - state.accept_prob, da)
        return _set(state, da[0]), da

    def finish(state, da):
        return _set(state, da[1])

    return init, update, finish


def make_runner(log_density, *, num_warmup: int, num_samples: int, dense_mass: bool = True,
                target_accept_prob: float = 0.8, max_tree_depth: int = 8, chain_method: str = "vectorized",
                adapt_mass_matrix: bool = True, warmup_tree_depth: int | None = None,
                mode_jumps: bool = True, warmup_jumps: bool = False, mode_metric: bool = False,
                single_window: bool = False):
    """Build the (unjitted) sampling function of one spectrum.

    Args:
        log_density: ``(z (d,), flux, ivar) -> scalar`` log posterior in the
            unconstrained space.
        num_warmup, num_samples: iterations per chain (warmup is discarded).
        dense_mass: dense (True) or diagonal inverse mass matrix.
        target_accept_prob: dual-averaging target.
        max_tree_depth: NUTS tree depth cap (at most 2**depth - 1 leapfrog steps).
        warmup_tree_depth: the cap during warmup (default: ``max_tree_depth``).
        chain_method: see the module docstring.
        adapt_mass_matrix: adapt the mass matrix during warmup (from the given start).
            With ``num_warmup=0`` nothing adapts: the given step size and inverse
            mass matrix are used as they are (continuing chains that have warmed up).
        mode_jumps: after every NUTS transition of the sampling phase (not the
            warmup, whose mass-matrix windows should see one mode), try one
            :func:`mode_jump` between the regions of ``modes`` (one more gradient
            per draw).
        warmup_jumps: mode jumps during the warmup too (with ``adapt_mass_matrix=False``:
            a step-size adaptation that sees every mode the chains will visit).
        mode_metric: NUTS runs in the standardised coordinates ``u = L_k^-1 (z - c_k)`` of
            the mode k the chain is in, with a unit mass matrix, and the jumps are
            :func:`metric_jump` moves of the label k (each mode its own metric, the same for
            every chain; see :func:`metric_jump`). Needs ``mode_jumps`` and no mass-matrix
            adaptation (the modes' shapes are the metric; the step size may adapt, with the
            jumps on, whatever ``warmup_jumps`` says). A chain
            starts with the label of the mode nearest to ``z0``. With fewer than two usable
            modes the metric is the given inverse mass matrix (the same sampler as without
            ``mode_metric``), and the trace's ``inverse_mass_matrix`` is the given one.
        single_window: the warmup adapts the step size only, by one dual-averaging run over all
            ``num_warmup`` iterations (:func:`_single_window`), instead of NumPyro's windowed
            schedule (whose last window alone sets the step). Needs no mass-matrix adaptation.

    Returns:
        ``run(keys (C,), z0 (C, d), inverse_mass (C, d, d) or (C, d), step_size (C,),
        modes (C, K, d + 1, d), flux (P,), ivar (P,)) -> ChainTrace``; ``modes``:
        the mode centres and shapes of :func:`pack_modes` (NaN: unused slots).

    Raises:
        ValueError: bad iteration counts, unknown chain method.
    """
    from numpyro.infer.hmc import hmc

    if int(num_warmup) < 0 or int(num_samples) < 1:
        raise ValueError(f"need num_warmup >= 0 and num_samples >= 1, got {num_warmup}, {num_samples}")
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS} or 'auto', got {chain_method!r}")
    if mode_metric and (not mode_jumps or adapt_mass_matrix and num_warmup > 0):
        raise ValueError("mode_metric needs mode_jumps=True and adapt_mass_matrix=False (or no warmup)")
    if single_window and adapt_mass_matrix and num_warmup > 0:
        raise ValueError("single_window adapts the step size only: it needs adapt_mass_matrix=False")
    num_warmup, num_samples = int(num_warmup), int(num_samples)
    depths = (int(max_tree_depth if warmup_tree_depth is None else warmup_tree_depth), int(max_tree_depth))
    da_init, da_update, da_finish = _single_window(target_accept_prob)
    # NumPyro adapts during the warmup unless the single window does (then NumPyro sees no warmup)
    numpyro_warmup = 0 if single_window else num_warmup

    def potential_gen(flux, ivar, scale):
        return lambda w: -log_density(w * scale, flux, ivar)

    def one_chain(key, z0, inv_mass, step_size, modes, flux, ivar):
        # NUTS runs on w = z / scale, scale the square root of the given inverse mass matrix's
        # diagonal, so every coordinate has about unit posterior width. NumPyro's windowed
        # adaptation shrinks each covariance estimate towards 1e-3 x identity; in z an rv whose
        # window is +-500 km/s and whose posterior is 0.3 km/s wide has a variance of ~1e-7, and
        # that shrinkage inflated it 100-fold (and the step size shrank to match). A diagonal
        # rescaling changes nothing else: HMC is equivariant under it with the mass matrix
        # rescaled alike, so step sizes and mass matrices convert exactly (the trace holds z).
        dense = inv_mass.ndim == 2
        radius = jump_radius(z0.shape[-1])
        var = jnp.diagonal(inv_mass) if dense else inv_mass
        scale = jnp.sqrt(jnp.where(var > 0, var, 1.0))
        inv_w = inv_mass / jnp.outer(scale, scale) if dense else inv_mass / scale**2
        args = (flux, ivar, scale)
        # A fresh hmc() per trace: NumPyro's init_kernel keeps its settings in closure variables.
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        # Without warmup NumPyro would still search a "reasonable" step size at init: keep the given one.
        adapt = numpyro_warmup > 0
        state = init_kernel(z0 / scale, numpyro_warmup, step_size=step_size, inverse_mass_matrix=inv_w,
                            adapt_step_size=adapt, adapt_mass_matrix=adapt_mass_matrix and adapt,
                            dense_mass=dense_mass, target_accept_prob=target_accept_prob,
                            max_tree_depth=depths, model_args=args, rng_key=key)

        potential_and_grad = jax.value_and_grad(potential_gen(*args))
        warm_keys = jax.random.split(jax.random.fold_in(key, 0x6B), max(num_warmup, 1))[:num_warmup]
        jump_keys = jax.random.split(jax.random.fold_in(key, 0x6A), num_samples)

        def jump(s, k):
            def lp_and_grad(z):
                pe, g_w = potential_and_grad(z / scale)
                return -pe, g_w
            ok, z_new, lp_new, g_w = mode_jump(k, s.z * scale, -s.potential_energy, modes, radius,
                                               lp_and_grad)
            s = s._replace(z=jnp.where(ok, z_new / scale, s.z), z_grad=jnp.where(ok, g_w, s.z_grad),
                           potential_energy=jnp.where(ok, -lp_new, s.potential_energy))
            return s, ok

        def warm(carry, k):
            s, da, n_div, n_steps = carry
            s = sample_kernel(s, model_args=args)
            if single_window:
                s, da = da_update(s, da)
            if warmup_jumps:
                s, _ = jump(s, k)
            n_div, n_steps = n_div + s.diverging.astype(jnp.int32), n_steps + s.num_steps.astype(jnp.int32)
            return (s, da, n_div, n_steps), None

        def draw(s, k):
            s = sample_kernel(s, model_args=args)
            if mode_jumps:
                s, ok = jump(s, k)
            else:
                ok = jnp.zeros((), bool)
            return s, (s.z * scale, -s.potential_energy, s.diverging, s.num_steps, s.accept_prob, ok)

        zero = jnp.zeros((), jnp.int32)
        (state, da, n_div, n_warm), _ = jax.lax.scan(warm, (state, da_init(state.adapt_state.step_size), zero,
                                                            zero), warm_keys, length=num_warmup)
        if single_window and num_warmup:
            state = da_finish(state, da)
        m = state.adapt_state.inverse_mass_matrix
        m = m * jnp.outer(scale, scale) if dense else m * scale**2
        state, (z, lp, div, steps, acc, jumped) = jax.lax.scan(draw, state, jump_keys)
        return ChainTrace(z, lp, div, steps, acc, state.adapt_state.step_size, m, n_div, n_warm, jumped)

    def metric_potential_gen(flux, ivar, centre, chol):
        return lambda u: -log_density(centre + chol @ u, flux, ivar)

    def one_chain_metric(key, z0, inv_mass, step_size, modes, flux, ivar):
        # The chain's state is (u, k): z = c_k + L_k u, NUTS on u at fixed k with a unit mass matrix,
        # metric_jump moves of k at fixed u. Fewer than two usable modes: the one metric is the
        # given inverse mass matrix (centre 0, L its Cholesky factor), no jumps.
        d = z0.shape[-1]
        centres, chols, usable = unpack_modes(modes)
        inv_dense = inv_mass if inv_mass.ndim == 2 else jnp.diag(inv_mass)
        single = jnp.sum(usable) < 2
        own = jnp.linalg.cholesky(inv_dense)
        centres = jnp.where(single, jnp.zeros_like(centres), centres)
        chols = jnp.where(single, jnp.broadcast_to(own, chols.shape), chols)
        usable = jnp.where(single, jnp.arange(usable.shape[0]) == 0, usable)
        metric = jnp.concatenate([centres[:, None, :], chols], axis=1)  # NaN-free, for metric_jump
        metric = jnp.where(usable[:, None, None], metric, jnp.nan)
        k0, _ = mode_region(z0, centres, chols, usable, jnp.inf)

        def whiten(z, k):
            return jax.scipy.linalg.solve_triangular(chols[k], z - centres[k], lower=True)

        adapt = numpyro_warmup > 0
        init_kernel, sample_kernel = hmc(potential_fn_gen=metric_potential_gen, algo="NUTS")
        unit = jnp.eye(d, dtype=z0.dtype) if dense_mass else jnp.ones(d, z0.dtype)
        state = init_kernel(whiten(z0, k0), numpyro_warmup, step_size=step_size, inverse_mass_matrix=unit,
                            adapt_step_size=adapt, adapt_mass_matrix=False, dense_mass=dense_mass,
                            target_accept_prob=target_accept_prob, max_tree_depth=depths,
                            model_args=(flux, ivar, centres[k0], chols[k0]), rng_key=key)

        def lp_and_grad(z):
            return jax.value_and_grad(log_density)(z, flux, ivar)

        def jump_label(carry, k_jump):
            s, k = carry
            ok, j, lp_new, g_u = metric_jump(k_jump, s.z, k, -s.potential_energy, metric, lp_and_grad)
            s = s._replace(z_grad=jnp.where(ok, -g_u, s.z_grad),
                           potential_energy=jnp.where(ok, -lp_new, s.potential_energy))
            k = jnp.where(ok, j, k)
            return (s, k), ok

        def warm(carry, kj):
            (s, k), da, n_div, n_steps = carry
            s = sample_kernel(s, model_args=(flux, ivar, centres[k], chols[k]))
            if single_window:
                s, da = da_update(s, da)
            (s, k), _ = jump_label((s, k), kj)
            n_div, n_steps = n_div + s.diverging.astype(jnp.int32), n_steps + s.num_steps.astype(jnp.int32)
            return ((s, k), da, n_div, n_steps), None

        def draw(carry, kj):
            s, k = carry
            s = sample_kernel(s, model_args=(flux, ivar, centres[k], chols[k]))
            (s, k), ok = jump_label((s, k), kj)
            z = centres[k] + chols[k] @ s.z
            return (s, k), (z, -s.potential_energy, s.diverging, s.num_steps, s.accept_prob, ok)

        warm_keys = jax.random.split(jax.random.fold_in(key, 0x6B), max(num_warmup, 1))[:num_warmup]
        jump_keys = jax.random.split(jax.random.fold_in(key, 0x6A), num_samples)
        zero = jnp.zeros((), jnp.int32)
        da0 = da_init(state.adapt_state.step_size)
        ((state, k), da, n_div, n_warm), _ = jax.lax.scan(warm, ((state, k0), da0, zero, zero), warm_keys,
                                                          length=num_warmup)
        if single_window and num_warmup:
            state = da_finish(state, da)
        (state, _), (z, lp, div, steps, acc, jumped) = jax.lax.scan(draw, (state, k), jump_keys)
        return ChainTrace(z, lp, div, steps, acc, state.adapt_state.step_size, inv_mass, n_div, n_warm,
                          jumped)

    if mode_metric:
        one_chain = one_chain_metric  # noqa: F811
    in_axes = (0, 0, 0, 0, 0, None, None)
    if chain_method == "vectorized":
        return jax.vmap(one_chain, in_axes=in_axes)
    if chain_method == "sequential":
        def run(keys, z0, inv_mass, step_size, modes, flux, ivar):
            return jax.lax.map(lambda a: one_chain(*a, flux, ivar), (keys, z0, inv_mass, step_size, modes))
        return run
    return jax.pmap(one_chain, in_axes=in_axes)
