"""Speed of the line-list generator: ms per spectrum, single and batched, against dense numpy.

What is timed (jit compiled once, then the median of ``--repeat`` calls, each
ended by ``block_until_ready``):

a. one spectrum, ``jax.jit(gen.flux)`` at the Sun's labels, and the compile
   time of the first call;
b. a batch of ``--batch`` label vectors drawn uniformly in the label box,
   ``jax.jit(gen.flux_batch)``, reported per spectrum;
c. a dense numpy reference in the same run: every line evaluated on every
   pixel (``n_lines x n_pix``, in chunks of lines) as a Thompson-Cox-Hastings
   pseudo-Voigt (the hydrogen profile for H lines) with the generator's own
   per-line strengths and widths (``gen._line_params``), summed to an opacity
   ratio, turned into flux with the generator's documented residual-flux
   formula and convolved with the same pixel-integrated Gaussian
   macroturbulence kernel (edge-padded). Its time per spectrum (numpy part
   only) and its max |difference| from jaxspec (the cost of windowing) are
   reported for ``--dense-spectra`` label vectors.

With ``--profile`` the time of one spectrum is split into the per-line
physics (``_line_params``: LTE layer, strengths, widths), each block group
of the sparse evaluation (``gen._groups``: block size, table shape, profile
evaluations, filled fraction of the table) and the macroturbulence
convolution.

Default size: 4200 A to 16,000 pixels of 2 km/s (4200-4673 A), which holds
about 11,000 lines of the built-in list. The step is chosen so that line
profiles are sampled: the narrowest lines in the label box (heavy elements
at 3800 K with the default 1.58 km/s microturbulence) have a Gaussian sigma
of about 1.2 km/s, 0.6 pixel at 2 km/s, where point sampling still conserves
the area of a Gaussian to ~2e-3 (iron lines in the Sun: sigma 1.4 km/s, 0.7
pixel, ~1e-4). Coarser grids meet ">= 10,000 lines on >= 8,000 pixels" with
fewer pixels (e.g. 4200-5600 A at 10 km/s: ~25,800 lines, 8,626 pixels), but
there a line core (sigma ~0.15 pixel) falls between pixel centres and its
point-sampled equivalent width varies from ~0.02x to ~2.7x the true value
with the sub-pixel phase: fast arithmetic, not a meaningful spectrum. That
setting can still be timed with ``--wave-max 5600 --pixel-kms 10``.

Writes JSON (``--out``, default ``benchmarks/records/bench_generator.json``)
and prints a table.

Usage: python benchmarks/bench_generator.py [--n-pix N] [--pixel-kms V]
       [--wave-min A] [--wave-max A] [--n-lines N] [--batch B] [--repeat R]
       [--dense-spectra K] [--skip-dense] [--profile] [--out PATH]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import erf

from jaxspec._machine import cpu_model
from jaxspec.linelist.builtin import builtin_linelist
from jaxspec.linelist.generator import LineListGenerator
from jaxspec.linelist.reference import dense_eta, residual_flux
from jaxspec.physics.constants import C_KMS
from jaxspec.physics.lsf import gaussian_broadening

RESULTS = Path(__file__).resolve().parent / "records"
SUN = (5772.0, 4.44, 0.0)
_SIGMA_MAX_KMS = 20.0  # the generator's macroturbulence kernel spans +-5 x this
_HOLTSMARK_NORM = 2.0 * (np.pi / 2.5) / np.sin(np.pi / 2.5)  # integral of 1 / (1 + |x|^2.5)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wave-min", type=float, default=4200.0, help="first wavelength [A, vacuum]")
    p.add_argument("--n-pix", type=int, default=16000, help="number of pixels (sets wave-max)")
    p.add_argument(
        "--wave-max", type=float, default=None, help="last wavelength [A]; overrides --n-pix"
    )
    p.add_argument("--pixel-kms", type=float, default=2.0, help="grid step [km/s]")
    p.add_argument(
        "--n-lines", type=int, default=10000,
        help="minimum number of lines the generator must hold (0: no check)",
    )
    p.add_argument("--batch", type=int, default=256, help="spectra per batched call")
    p.add_argument("--repeat", type=int, default=5, help="timed calls (median reported)")
    p.add_argument("--dense-spectra", type=int, default=2, help="spectra for the numpy reference")
    p.add_argument(
        "--dense-dtype", choices=("float32", "float64"), default="float64",
        help="dtype of the numpy reference",
    )
    p.add_argument("--skip-dense", action="store_true", help="no numpy reference")
    p.add_argument("--profile", action="store_true", help="split one spectrum's time by stage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "bench_generator.json")
    args = p.parse_args(argv)
    if args.wave_max is None:
        dlnlam = args.pixel_kms / C_KMS
        args.wave_max = args.wave_min * math.exp((args.n_pix - 1) * dlnlam)
    return args


def time_call(fn, *args, repeat: int) -> tuple[float, float]:
    """(first call incl. compile [s], median of ``repeat`` later calls [s])."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


# ---------------------------------------------------------------- numpy reference


def _macro_kernel(vmacro_kms: float, pixel_kms: float) -> np.ndarray:
    """The pixel-integrated Gaussian of jaxspec.physics.gaussian_broadening, in numpy."""
    half = int(math.ceil(5.0 * _SIGMA_MAX_KMS / pixel_kms))
    sigma = max(abs(vmacro_kms) / pixel_kms, 0.05)
    edges = np.arange(-half, half + 2, dtype=np.float64) - 0.5
    taps = np.maximum(np.diff(erf(edges / (sigma * math.sqrt(2.0)))), 0.0)
    return taps / taps.sum()


def dense_flux(gen, strength, sigma, gamma, *, dtype=np.float64, chunk=256) -> np.ndarray:
    """Every line on every pixel (pixel units), summed; the generator's flux formula."""
    p = gen.params
    eta = dense_eta(gen.wave.size, gen._pos_np, gen._hydrogen_np, strength, sigma, gamma,
                    dtype=dtype, chunk=chunk)
    flux = residual_flux(eta, p)
    if float(p.vmacro) != 0.0:
        k = _macro_kernel(float(p.vmacro), gen.pixel_kms).astype(dtype)
        h = (k.size - 1) // 2
        flux = np.convolve(np.pad(flux, h, mode="edge"), k, mode="valid")
    return flux


# ----------------------------------------------------------------------- profile


def _group_tables(grp) -> list[np.ndarray]:
    """The (n_blocks, width) line-index table(s) of one block group (one, or one per tier)."""
    tables = getattr(grp, "tables", None)
    return list(tables) if tables is not None else [grp.table]


def profile_stages(gen, labels, repeat: int) -> dict:
    """Time of one spectrum split into per-line physics, each block group, and broadening."""
    zero = jnp.zeros(gen.n_lines, labels.dtype)
    line_params = jax.jit(lambda lab: gen._line_params(lab, zero))
    _, t_params = time_call(line_params, labels, repeat=repeat)
    params = jax.block_until_ready(line_params(labels))
    groups = []
    for grp in gen._groups:
        one = copy.copy(gen)
        one._groups = [grp]
        eta = jax.jit(one._eta)
        _, t = time_call(eta, *params, repeat=repeat)
        tables = _group_tables(grp)
        n_entries = sum(tab.size for tab in tables)
        filled = float(sum(np.sum(tab < gen.n_lines) for tab in tables) / max(n_entries, 1))
        groups.append({
            "block": grp.block,
            "hydrogen": grp.hydrogen,
            "table_shapes": [list(tab.shape) for tab in tables],
            "profile_evals": n_entries * grp.block,
            "filled_fraction": filled,
            "ms": 1e3 * t,
        })
    n_pix = gen.wave.size
    conv = jax.jit(
        lambda f: gaussian_broadening(f, gen.params.vmacro, gen._dlnlam, sigma_max_kms=20.0)
    )
    _, t_conv = time_call(conv, jnp.ones(n_pix, labels.dtype), repeat=repeat)
    return {
        "line_params_ms": 1e3 * t_params,
        "groups": groups,
        "vmacro_convolution_ms": 1e3 * t_conv,
    }


# --------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    args = parse_args(argv)
    float_dtype = jnp.zeros(()).dtype
    t0 = time.perf_counter()
    gen = LineListGenerator(
        builtin_linelist(), args.wave_min, args.wave_max, pixel_kms=args.pixel_kms
    )
    t_build = time.perf_counter() - t0
    n_lines, n_pix = gen.n_lines, gen.wave.size
    print(f"{gen!r}: built in {t_build:.1f} s")
    print(f"n_lines = {n_lines}, n_pix = {n_pix}")
    if args.n_lines and n_lines < args.n_lines:
        print(f"WARNING: {n_lines} lines < --n-lines {args.n_lines}", file=sys.stderr)

    sun = jnp.asarray(SUN, float_dtype)
    rng = np.random.default_rng(args.seed)
    b = gen.label_bounds
    batch = jnp.asarray(rng.uniform(b[:, 0], b[:, 1], size=(args.batch, b.shape[0])), float_dtype)

    flux = jax.jit(gen.flux)
    compile_single, t_single = time_call(flux, sun, repeat=args.repeat)
    flux_batch = jax.jit(gen.flux_batch)
    compile_batch, t_batch = time_call(flux_batch, batch, repeat=args.repeat)
    ms_single = 1e3 * t_single
    ms_batch = 1e3 * t_batch / args.batch

    result = {
        "benchmark": "bench_generator",
        "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}",
        "cpu_model": cpu_model(),
        "platform": jax.default_backend(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "precision": str(np.dtype(float_dtype)),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "wave_min": float(gen.wave[0]),
        "wave_max": float(gen.wave[-1]),
        "pixel_kms": gen.pixel_kms,
        "n_lines": n_lines,
        "n_pix": n_pix,
        "n_hydrogen_lines": int(np.sum(gen._hydrogen_np)),
        "batch": args.batch,
        "repeat": args.repeat,
        "build_s": t_build,
        "single_compile_s": compile_single,
        "single_ms": ms_single,
        "batch_compile_s": compile_batch,
        "batch_ms_per_spectrum": ms_batch,
        "target_ms_per_spectrum": 2.0,
        "dense": None,
        "profile": None,
    }

    if not args.skip_dense and args.dense_spectra > 0:
        dtype = np.dtype(args.dense_dtype)
        zero = jnp.zeros(n_lines, float_dtype)
        line_params = jax.jit(lambda lab: gen._line_params(lab, zero))
        labels = jnp.concatenate([sun[None], batch[: args.dense_spectra - 1]])
        times, diffs = [], []
        for lab in labels:
            params = [np.asarray(a) for a in line_params(lab)]
            t0 = time.perf_counter()
            ref = dense_flux(gen, *params, dtype=dtype)
            times.append(time.perf_counter() - t0)
            diffs.append(float(np.max(np.abs(np.asarray(flux(lab), np.float64) - ref))))
        result["dense"] = {
            "dtype": str(dtype),
            "n_spectra": len(times),
            "ms_per_spectrum": 1e3 * statistics.median(times),
            "max_abs_diff": max(diffs),
            "max_abs_diff_each": diffs,
        }
    if args.profile:
        result["profile"] = profile_stages(gen, sun, args.repeat)

    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


def print_table(r: dict) -> None:
    dense_ms = r["dense"]["ms_per_spectrum"] if r["dense"] else None
    print(f"\n{r['device']}, jax {r['jax']}, {r['precision']}, {r['cpu_count']} CPUs")
    print(f"{r['n_lines']} lines x {r['n_pix']} pixels of {r['pixel_kms']:g} km/s\n")
    print(f"{'':34s}{'ms/spectrum':>12s}{'speedup':>10s}")
    rows = [
        ("jit(flux), one spectrum", r["single_ms"]),
        (f"jit(flux_batch), batch {r['batch']}", r["batch_ms_per_spectrum"]),
    ]
    if dense_ms is not None:
        rows.append((f"dense numpy ({r['dense']['dtype']})", dense_ms))
    for name, ms in rows:
        ratio = f"{dense_ms / ms:9.0f}x" if dense_ms else ""
        print(f"{name:34s}{ms:12.3f}{ratio:>10s}")
    print(f"\ncompile: flux {r['single_compile_s']:.1f} s, flux_batch {r['batch_compile_s']:.1f} s")
    print(f"target <= {r['target_ms_per_spectrum']} ms/spectrum batched")
    if r["dense"]:
        print(f"max |jaxspec - dense numpy| = {r['dense']['max_abs_diff']:.2e}")
    if r["profile"]:
        p = r["profile"]
        print(f"\nprofile of one spectrum: line params {p['line_params_ms']:.3f} ms, "
              f"macroturbulence {p['vmacro_convolution_ms']:.3f} ms")
        print(f"{'block':>6s} {'H':>2s} {'tables':>16s} {'evals':>10s} {'filled':>7s} {'ms':>8s}")
        for g in p["groups"]:
            shape = "+".join("x".join(str(s) for s in t) for t in g["table_shapes"])
            print(f"{g['block']:6d} {'y' if g['hydrogen'] else 'n':>2s} {shape:>16s} "
                  f"{g['profile_evals']:10d} {g['filled_fraction']:7.2f} {g['ms']:8.3f}")

if __name__ == "__main__":
    main()
