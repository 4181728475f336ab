"""The ``jaxspec`` command line.

Subcommands:
    jaxspec demo [--out DIR]   the README's main job (simulate a binary, compare with the Sun)
    jaxspec info               versions, devices and the JAX compilation cache

The command line turns on JAX's persistent compilation cache
(``~/.cache/jaxspec/jax``, or ``$JAXSPEC_CACHE_DIR``; ``JAXSPEC_NO_CACHE=1``
turns it off), so a second run skips most compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main"]


def _demo(args) -> int:
    from jaxspec.demo import run_demo

    summary = run_demo(args.out, seed=args.seed, sun=not args.no_sun)
    print(json.dumps(summary, indent=2))
    print(f"wrote results and plots to {args.out}/")
    return 0


def _info(args) -> int:
    import jax

    import jaxspec

    print(f"jaxspec {jaxspec.__version__}")
    print(f"jax {jax.__version__}; devices: {', '.join(str(d) for d in jax.devices())}")
    print(f"x64 enabled: {jax.config.jax_enable_x64}")
    print(f"compilation cache: {jax.config.jax_compilation_cache_dir or '(off)'}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxspec",
        description="Find and measure double-lined spectroscopic binaries with JAX.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "demo",
        help="simulate a binary spectrum and compare the synthesized Sun with the observed one",
        description="Example: jaxspec demo --out jaxspec-demo",
    )
    p.add_argument("--out", default="jaxspec-demo", help="output directory (default: jaxspec-demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulated noise")
    p.add_argument("--no-sun", action="store_true", help="skip the solar comparison")
    p.set_defaults(func=_demo)
    p = sub.add_parser("info", help="versions, devices, cache", description="Example: jaxspec info")
    p.set_defaults(func=_info)
    args = parser.parse_args(argv)
    if not os.environ.get("JAXSPEC_NO_CACHE"):
        from jaxspec._cache import enable_compilation_cache

        enable_compilation_cache()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
