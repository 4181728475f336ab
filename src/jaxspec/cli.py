"""The ``jaxspec`` command line.

Subcommands:
    jaxspec demo [--out DIR]   the README's main job (simulate a binary, compare with the Sun)
    jaxspec train ...          train an emulator (from a grid file or the line-list generator)
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


def _train(args) -> int:
    import numpy as np

    from jaxspec.emulator.train import emulator_from_generator, read_grid, train_emulator

    kwargs = dict(hidden=tuple(args.hidden), steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, progress=sys.stderr.isatty())
    if args.grid:
        labels, flux, wave, names = read_grid(args.grid)
        em, report = train_emulator(labels, flux, wave, names, **kwargs)
    else:
        from jaxspec import LineListGenerator

        gen = LineListGenerator(wave_min=args.wave_min, wave_max=args.wave_max)
        box = None
        if args.box:
            box = np.array(args.box, dtype=float).reshape(-1, 2)
        em, report = emulator_from_generator(gen, args.n_train, label_bounds=box,
                                             bin_pixels=args.bin_pixels, **kwargs)
    em.save(args.out)
    print(json.dumps({"out": args.out, "val_rms": report.val_rms, "best_step": report.best_step,
                      "steps": report.steps, "seconds": round(report.seconds, 1)}, indent=2))
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
    p = sub.add_parser(
        "train",
        help="train an emulator from an HDF5 grid or from the line-list generator",
        description=(
            "Example: jaxspec train --wave-min 6000 --wave-max 6300 --n-train 8192 --out my_emulator.h5\n"
            "         jaxspec train --grid my_grid.h5 --out my_emulator.h5"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="emulator file to write (HDF5)")
    p.add_argument("--grid", help="HDF5 training grid (schema in jaxspec.emulator.train)")
    p.add_argument("--wave-min", type=float, default=4950.0, help="vacuum A (generator mode)")
    p.add_argument("--wave-max", type=float, default=5350.0, help="vacuum A (generator mode)")
    p.add_argument("--n-train", type=int, default=8192, help="training spectra (generator mode)")
    p.add_argument("--box", type=float, nargs="+",
                   help="label box lo hi per label, e.g. 4500 6500 3.5 5 -1 0.5 (generator mode)")
    p.add_argument("--bin-pixels", type=int, default=3, help="1 km/s generator pixels per emulator pixel")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256, 256])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_train)
    p = sub.add_parser("info", help="versions, devices, cache", description="Example: jaxspec info")
    p.set_defaults(func=_info)
    args = parser.parse_args(argv)
    if not os.environ.get("JAXSPEC_NO_CACHE"):
        from jaxspec._cache import enable_compilation_cache

        enable_compilation_cache()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
