"""Tune the generator's global physical parameters on the observed Sun.

The single-layer model has a few global knobs (``GeneratorParams``: layer
temperature, pressure depth, maximum depth, van der Waals scale,
microturbulence, macroturbulence, hydrogen Stark scale, common strength
offset). This script fits them once, with the *uncalibrated* line list, to
the observed UVES solar spectrum on 4845-5400 A (vacuum) at the Sun's labels
(5772 K, 4.438, 0.0), together with a velocity shift, by L-BFGS (optax) on the
mean squared residual. The result is printed as the new ``GeneratorParams``
defaults, to be pasted into ``src/jaxspec/linelist/strength.py``.

Usage: python scripts/tune_generator.py [--steps 150]
"""

from __future__ import annotations

import argparse
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxspec.demo import (
    SUN_LABELS,
    SUN_VSINI,
    UVES_RESOLUTION,
    find_solar_spectrum,
    load_solar_spectrum,
)
from jaxspec.linelist.builtin import builtin_linelist
from jaxspec.linelist.generator import LineListGenerator
from jaxspec.linelist.strength import GeneratorParams
from jaxspec.physics.grid import make_resampler
from jaxspec.physics.observe import observe

# name: (to unconstrained, from unconstrained)
_TRANSFORMS = {
    "t_frac": (lambda v: jnp.arctanh((v - 0.9) / 0.2), lambda u: 0.9 + 0.2 * jnp.tanh(u)),
    "tau_layer": (jnp.log, jnp.exp),
    "d_max": (lambda v: jnp.arctanh((v - 0.8) / 0.2), lambda u: 0.8 + 0.2 * jnp.tanh(u)),
    "vdw_scale": (jnp.log, jnp.exp),
    "vmic": (jnp.log, jnp.exp),
    "h_stark_scale": (jnp.log, jnp.exp),
    "vmacro": (jnp.log, jnp.exp),
    "log_strength": (lambda v: v, lambda u: u),
    "h_log_strength": (lambda v: v, lambda u: u),
    "core_frac": (lambda v: jnp.arctanh(2.0 * v - 1.0), lambda u: 0.5 + 0.5 * jnp.tanh(u)),
    "log_eta_core": (lambda v: v, lambda u: u),
}
# Pixels of the H-beta region weigh more: it is 35 of 555 A but has its own target.
_HBETA = (4845.0, 4880.0, 4.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--wave-min", type=float, default=4845.0)
    ap.add_argument("--wave-max", type=float, default=5400.0)
    args = ap.parse_args(argv)
    path = find_solar_spectrum()
    if path is None:
        raise SystemExit("observed solar spectrum not found; set JAXSPEC_SHARED_DATA")
    wave, flux = load_solar_spectrum(path, args.wave_min, args.wave_max)
    d = GeneratorParams()
    start = dataclasses.replace(d, vmacro=max(d.vmacro, 1.0), core_frac=min(max(d.core_frac, 0.2), 0.9))
    gen = LineListGenerator(
        builtin_linelist(calibrated=False), args.wave_min - 15, args.wave_max + 15, params=start
    )
    res = make_resampler(gen.wave, wave)
    fobs = jnp.asarray(flux, jnp.float32)
    weight = np.where((wave >= _HBETA[0]) & (wave <= _HBETA[1]), _HBETA[2], 1.0)
    weight = jnp.asarray(weight / weight.mean(), jnp.float32)
    labels = jnp.asarray(SUN_LABELS, jnp.float32)
    zero = jnp.zeros(gen.n_lines, jnp.float32)
    dl = gen._dlnlam

    def unpack(u):
        return GeneratorParams(**{k: _TRANSFORMS[k][1](u[k]) for k in _TRANSFORMS})

    def loss(theta):
        u, rv = theta
        model = gen._flux(labels, zero, unpack(u))
        m = observe(model, dl, res, rv=rv, vsini=SUN_VSINI, resolution=UVES_RESOLUTION)
        return jnp.mean(weight * (m - fobs) ** 2)

    u0 = {k: _TRANSFORMS[k][0](jnp.float32(getattr(start, k))) for k in _TRANSFORMS}
    theta = (u0, jnp.float32(0.3))
    # Adam on unconstrained parameters: robust to the strongly different
    # curvatures of the knobs (L-BFGS line searches stepped into overflow).
    opt = optax.adam(optax.cosine_decay_schedule(args.lr, args.steps, alpha=0.05))
    state = opt.init(theta)
    g0 = jax.grad(loss)(theta)
    if not all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(g0)):
        raise FloatingPointError(f"non-finite gradient at the start: {g0}")

    @jax.jit
    def step(theta, state):
        value, grad = jax.value_and_grad(loss)(theta)
        updates, state = opt.update(grad, state, theta)
        return optax.apply_updates(theta, updates), state, value

    for i in range(args.steps):
        theta, state, value = step(theta, state)
        if i % 10 == 0 or i == args.steps - 1:
            p = unpack(theta[0])
            knobs = ", ".join(f"{k}={float(getattr(p, k)):.4f}" for k in _TRANSFORMS)
            print(f"step {i:4d} rms {np.sqrt(float(value)):.4f} rv {float(theta[1]):.3f} | {knobs}")
    p = unpack(theta[0])
    print("\nGeneratorParams(" + ", ".join(f"{k}={float(getattr(p, k)):.4g}" for k in _TRANSFORMS) + ")")


if __name__ == "__main__":
    main()
