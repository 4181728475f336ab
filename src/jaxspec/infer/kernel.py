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

__all__ = ["CHAIN_METHODS", "ChainTrace", "make_runner"]

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


def make_runner(log_density, *, num_warmup: int, num_samples: int, dense_mass: bool = True,
                target_accept_prob: float = 0.8, max_tree_depth: int = 8, chain_method: str = "vectorized",
                adapt_mass_matrix: bool = True, warmup_tree_depth: int | None = None):
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

    Returns:
        ``run(keys (C,), z0 (C, d), inverse_mass (C, d, d) or (C, d), step_size (C,),
        flux (P,), ivar (P,)) -> ChainTrace``.

    Raises:
        ValueError: bad iteration counts, unknown chain method.
    """
    from numpyro.infer.hmc import hmc

    if int(num_warmup) < 0 or int(num_samples) < 1:
        raise ValueError(f"need num_warmup >= 0 and num_samples >= 1, got {num_warmup}, {num_samples}")
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS} or 'auto', got {chain_method!r}")
    num_warmup, num_samples = int(num_warmup), int(num_samples)
    depths = (int(max_tree_depth if warmup_tree_depth is None else warmup_tree_depth), int(max_tree_depth))

    def potential_gen(flux, ivar, scale):
        return lambda w: -log_density(w * scale, flux, ivar)

    def one_chain(key, z0, inv_mass, step_size, flux, ivar):
        # NUTS runs on w = z / scale, scale the square root of the given inverse mass matrix's
        # diagonal, so every coordinate has about unit posterior width. NumPyro's windowed
        # adaptation shrinks each covariance estimate towards 1e-3 x identity; in z an rv whose
        # window is +-500 km/s and whose posterior is 0.3 km/s wide has a variance of ~1e-7, and
        # that shrinkage inflated it 100-fold (and the step size shrank to match). A diagonal
        # rescaling changes nothing else: HMC is equivariant under it with the mass matrix
        # rescaled alike, so step sizes and mass matrices convert exactly (the trace holds z).
        dense = inv_mass.ndim == 2
        var = jnp.diagonal(inv_mass) if dense else inv_mass
        scale = jnp.sqrt(jnp.where(var > 0, var, 1.0))
        inv_w = inv_mass / jnp.outer(scale, scale) if dense else inv_mass / scale**2
        args = (flux, ivar, scale)
        # A fresh hmc() per trace: NumPyro's init_kernel keeps its settings in closure variables.
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        # Without warmup NumPyro would still search a "reasonable" step size at init: keep the given one.
        adapt = num_warmup > 0
        state = init_kernel(z0 / scale, num_warmup, step_size=step_size, inverse_mass_matrix=inv_w,
                            adapt_step_size=adapt, adapt_mass_matrix=adapt_mass_matrix and adapt,
                            dense_mass=dense_mass, target_accept_prob=target_accept_prob,
                            max_tree_depth=depths, model_args=args, rng_key=key)

        def warm(carry, _):
            s, n_div, n_steps = carry
            s = sample_kernel(s, model_args=args)
            return (s, n_div + s.diverging.astype(jnp.int32), n_steps + s.num_steps.astype(jnp.int32)), None

        def draw(s, _):
            s = sample_kernel(s, model_args=args)
            return s, (s.z * scale, -s.potential_energy, s.diverging, s.num_steps, s.accept_prob)

        zero = jnp.zeros((), jnp.int32)
        (state, n_div, n_warm), _ = jax.lax.scan(warm, (state, zero, zero), None, length=num_warmup)
        state, (z, lp, div, steps, acc) = jax.lax.scan(draw, state, None, length=num_samples)
        m = state.adapt_state.inverse_mass_matrix
        m = m * jnp.outer(scale, scale) if dense else m * scale**2
        return ChainTrace(z, lp, div, steps, acc, state.adapt_state.step_size, m, n_div, n_warm)

    in_axes = (0, 0, 0, 0, None, None)
    if chain_method == "vectorized":
        return jax.vmap(one_chain, in_axes=in_axes)
    if chain_method == "sequential":
        def run(keys, z0, inv_mass, step_size, flux, ivar):
            return jax.lax.map(lambda a: one_chain(*a, flux, ivar), (keys, z0, inv_mass, step_size))
        return run
    return jax.pmap(one_chain, in_axes=in_axes)
