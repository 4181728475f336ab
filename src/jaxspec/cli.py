"""The ``jaxspec`` command line.

Subcommands:
    jaxspec demo [--out DIR]   the README's main job (simulate a binary, fit it, compare with the Sun)
    jaxspec fit FILE... [--out RESULTS]   fit spectrum files, print a summary, write a table
    jaxspec survey INPUT --out RESULTS [--chunk-size N] [--workers N | --scheduler ADDRESS]
                               a resumable run over an HDF5 stack, a directory or a file list
    jaxspec pack FILE... --out STACK.h5   pack spectrum files on one grid into an HDF5 stack
    jaxspec train ...          train an emulator (from a grid file or the line-list generator)
    jaxspec info               versions, devices, the default model and the compilation cache
    jaxspec models install binspec PATH   convert a local binspec checkout's APOGEE network once
                               into the user's model folder (found by every later fit)

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
    import importlib.metadata as md

    import jax

    import jaxspec

    print(f"jaxspec {jaxspec.__version__}")
    print(f"jax {jax.__version__}; backend {jax.default_backend()}; devices: "
          f"{', '.join(str(d) for d in jax.devices())}")
    print(f"x64 enabled: {jax.config.jax_enable_x64}")
    print(f"compilation cache: {jax.config.jax_compilation_cache_dir or '(off)'}")
    em = jaxspec.default_model()
    lo, hi = float(em.wave[0]), float(em.wave[-1])
    box = ", ".join(f"{n} {a:g}..{b:g}" for n, (a, b) in zip(em.label_names, em.label_bounds, strict=True))
    print(f"default model: emulator, {len(em.wave)} pixels, {lo:.1f}-{hi:.1f} A (vacuum); {box}")
    for pkg in ("flax", "optax", "numpyro", "astropy", "h5py", "dask", "distributed", "tqdm"):
        try:
            print(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            print(f"{pkg} (not installed)")
    return 0


def _models(args) -> int:
    from jaxspec.models.auto import install_binspec, installed_model_path

    if args.action == "install":
        out = install_binspec(args.path)
        print(f"installed the binspec APOGEE network as {out}; APOGEE spectra now fit with no --model")
    else:
        p = installed_model_path("apogee")
        print(f"apogee: {p} ({'installed' if p.is_file() else 'not installed'})")
    return 0


def _degree_arg(value: str):
    """``--continuum-degree``: an integer or 'auto'."""
    import argparse

    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value (or 'auto'): {value!r}") from None


def _fit_options(args) -> dict:
    opts = {}
    if args.fixed:
        fixed = {}
        for item in args.fixed:
            name, _, value = item.partition("=")
            if not name or not value:
                raise ValueError(f"--fixed takes NAME=VALUE, got {item!r}")
            try:
                fixed[name] = float(value)
            except ValueError:
                raise ValueError(f"--fixed {item!r}: VALUE must be a number") from None
        opts["fixed"] = fixed
    if args.shared is not None:
        opts["shared"] = tuple(args.shared)
    if args.flux_ratio_mode:
        opts["flux_ratio_mode"] = args.flux_ratio_mode
    if args.continuum_degree is not None:
        opts["continuum_degree"] = args.continuum_degree
    if args.rv_range is not None:
        opts["rv_range"] = args.rv_range
    return opts


def _add_fit_arguments(p) -> None:
    p.add_argument("--model", help="emulator file (HDF5, from Emulator.save or jaxspec train); default: "
                                   "the model covering each spectrum (bundled emulator 4950-5350 A, "
                                   "line-list generator 3800-9000 A, installed APOGEE model)")
    p.add_argument("--resolution", type=float,
                   help="resolving power for every spectrum (default: what the file or stack states)")
    p.add_argument("--fixed", nargs="+", metavar="NAME=VALUE", help="fixed parameters, e.g. vsini_1=0")
    p.add_argument("--instrument", help="instrument preset (galah, lamost-mrs, lamost-lrs, sdss, harps, feros, "
                                        "uves, salt-hrs, apogee): its resolution and continuum degree; "
                                        "a file of another instrument is rejected")
    p.add_argument("--shared", nargs="*", metavar="LABEL",
                   help="labels common to both stars (default: feh); give none for all per star")
    p.add_argument("--flux-ratio-mode", choices=("constant", "blackbody"))
    p.add_argument("--continuum-degree", type=_degree_arg,
                   help="Chebyshev degree of the continuum per segment, or 'auto' (the default, or the "
                        "--instrument preset's): 2 for continuum-normalized flux, else chosen per "
                        "segment by the BIC (raw counts with a blaze)")
    p.add_argument("--rv-range", type=float,
                   help="cross-correlation velocity range +-RV_RANGE [km/s] (default 300; fit bounds 1.5x)")


def _fit(args) -> int:
    from jaxspec.io.results import write_results
    from jaxspec.survey import fit_spectra

    table = fit_spectra(list(args.files), model=args.model, resolution=args.resolution, instrument=args.instrument,
                        **_fit_options(args))
    cols = [c for c in ("id", "teff_1", "teff_2", "rv_1", "rv_2", "flux_ratio", "delta_chi2", "is_binary",
                        "flag", "error") if c in table.colnames]
    table[cols].pprint(max_lines=-1, max_width=-1)
    if args.out:
        write_results(table, args.out)
        print(f"wrote {args.out}")
    return 0 if all(int(f) & (32 | 64 | 128) == 0 for f in table["flag"]) else 1


def _survey(args) -> int:
    from jaxspec.survey import run_survey

    table = run_survey(args.input, args.out, model=args.model, resolution=args.resolution,
                       chunk_size=args.chunk_size, workers=args.workers, scheduler=args.scheduler,
                       work_dir=args.work_dir, restart=args.restart, instrument=args.instrument,
                       progress=None if not args.quiet else False, **_fit_options(args))
    n_bad = int(table.meta["survey_n_not_fitted"])
    print(f"wrote {args.out}: {len(table)} spectra, {int(table['is_binary'].sum())} binaries, "
          f"{n_bad} not fitted (see the error column)")
    return 0


def _pack(args) -> int:
    from jaxspec.io.read import read_spectrum
    from jaxspec.io.stack import StackWriter

    spectra = [read_spectrum(f) for f in args.files]
    wave = spectra[0].wave
    for f, s in zip(args.files, spectra, strict=True):
        if s.wave.shape != wave.shape or not (s.wave == wave).all():
            raise SystemExit(f"{f}: its wavelength grid differs from {args.files[0]}'s; a stack holds "
                             "spectra on one grid (list the files in a text file for jaxspec survey instead)")
    res = {s.resolution for s in spectra}
    with StackWriter(args.out, wave, uncertainty="ivar",
                     resolution=res.pop() if len(res) == 1 and None not in res else None) as w:
        for s in spectra:
            w.append(s.flux[None], s.ivar[None], ids=[s.id])
    print(f"wrote {args.out}: {len(spectra)} spectra of {wave.size} pixels")
    return 0


def _map(args) -> int:
    from jaxspec.surveymap import write_map

    info = write_map(args.stack, args.out, results=args.results, color=args.color, progress=not args.quiet)
    print(f"wrote {args.out}: {info['n']} spectra, {info['bytes'] / 1e6:.1f} MB, {info['seconds']:.0f} s")
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
    p = sub.add_parser(
        "models", help="installed models (the APOGEE H-band network from a local binspec checkout)",
        description=("Examples: jaxspec models install binspec ~/binspec/data\n"
                     "          jaxspec models list"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("install", "list"))
    p.add_argument("source", nargs="?", choices=("binspec",), help="what to install (binspec)")
    p.add_argument("path", nargs="?", help="binspec data folder (holds NN_normalized_spectra.npz)")
    p.set_defaults(func=_models)
    p = sub.add_parser("info", help="versions, devices, default model, cache",
                       description="Example: jaxspec info")
    p.set_defaults(func=_info)
    p = sub.add_parser(
        "fit",
        help="fit spectrum files (FITS: APOGEE, LAMOST, generic image or table) and print the results",
        description=("Fits each file with the binary and single-star models, prints a table and exits "
                     "with 1 if any file could not be fitted.\n"
                     "Example: jaxspec fit apStar-r6-2M11194647+0820356.fits --model binspec.h5 "
                     "--out fits.ecsv"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", help="spectrum files")
    p.add_argument("--out", help="results table (.fits, .h5 or .ecsv)")
    _add_fit_arguments(p)
    p.set_defaults(func=_fit)
    p = sub.add_parser(
        "survey",
        help="fit a whole survey: resumable, failure-isolated, optionally on Dask",
        description=(
            "INPUT is an HDF5 stack (jaxspec pack, jaxspec.io.write_stack), a directory of spectrum "
            "files, or a text file listing files. Finished chunks are kept in OUT.parts/, so a run "
            "that is killed resumes where it stopped when started again with the same arguments.\n"
            "Examples: jaxspec survey survey.h5 --out results.fits\n"
            "          jaxspec survey spectra/ --out results.ecsv --workers 4 --chunk-size 128\n"
            "          jaxspec survey files.txt --out results.h5 --scheduler tcp://10.0.0.1:8786"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="HDF5 stack, directory of spectrum files, or text file listing files")
    p.add_argument("--out", required=True, help="results table (.fits, .h5/.hdf5 or .ecsv)")
    p.add_argument("--chunk-size", type=int, default=256, help="spectra per chunk (default 256)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=1, help="Dask worker processes on this machine")
    g.add_argument("--scheduler", help="address of a running Dask scheduler (e.g. from dask-jobqueue)")
    p.add_argument("--work-dir", help="chunk and log directory (default OUT.parts)")
    p.add_argument("--restart", action="store_true", help="discard finished chunks and start afresh")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_fit_arguments(p)
    p.set_defaults(func=_survey)
    p = sub.add_parser(
        "pack", help="pack spectrum files on one wavelength grid into an HDF5 stack",
        description="Example: jaxspec pack apStar-*.fits --out apogee.h5",
    )
    p.add_argument("files", nargs="+", help="spectrum files on one wavelength grid")
    p.add_argument("--out", required=True, help="stack file to write (HDF5)")
    p.set_defaults(func=_pack)
    p = sub.add_parser(
        "map", help="an HTML survey map of a stack (t-SNE of the amortized network's features)",
        description="Example: jaxspec map survey.h5 --out map.html --results results.fits --color is_binary",
    )
    p.add_argument("stack", help="HDF5 stack (jaxspec pack)")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--results", help="results table of jaxspec survey, matched by id (colours and fits)")
    p.add_argument("--color", help="column colouring the points (default is_binary, else p_binary)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_map)
    args = parser.parse_args(argv)
    if args.command == "models" and args.action == "install" and not (args.source and args.path):
        parser.error("models install needs a source and a path: jaxspec models install binspec PATH")
    if not os.environ.get("JAXSPEC_NO_CACHE"):
        from jaxspec._cache import enable_compilation_cache

        enable_compilation_cache()
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input or options: a message, not a traceback
        print(f"jaxspec {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
