"""Speed of the emulator: spectra per second, jaxspec against numpy, batches of 1, 64 and 1024.

What is timed, for each batch size ``n`` of ``--batches`` (label vectors drawn
uniformly in the emulator's label box):

a. jaxspec: ``jax.jit(emulator.flux)`` for ``n = 1`` and
   ``jax.jit(emulator.flux_batch)`` otherwise; compiled once (compile time
   reported separately), every call ended by ``block_until_ready``;
b. numpy, in the same run: a plain vectorized numpy implementation of the
   same network with the same weights, in the same precision as jaxspec
   (float32 unless ``JAX_ENABLE_X64=1``; ``--numpy-dtype`` overrides):
   per-pixel networks as ``s @ w0`` for the whole batch (one BLAS matrix
   product), an in-place sigmoid and a weighted sum over hidden units; MLPs as
   a chain of matrix products. This is a stronger baseline than binspec's own
   per-spectrum ``einsum`` loop.

Each timing is the median over ``--repeat`` repeats of the mean time of
enough back-to-back calls to fill about 50 ms (one call for large batches).
jaxspec is timed first, then numpy (interleaving them would slow numpy:
its BLAS threads then compete with XLA's spinning worker threads).
The largest |jaxspec - numpy| is reported as a sanity check.

Models (``--model``): ``binspec`` (default) is binspec's normalized APOGEE
network (7214 pixels x 5 sigmoid hidden units x 5 labels) read from
``../shared/data/binspec`` or ``$JAXSPEC_BINSPEC_DATA``, or, when those data
are absent, a random per-pixel network of the same size
(``random-per-pixel``); ``random-mlp`` is a Payne-style MLP 5 -> 300 -> 300
-> 7214 (leaky ReLU) with random weights.

Target (issue 3, acceptance 4): jaxspec at least 5x faster per spectrum than
numpy at batch 1024 on the 2-core CPU.

Writes JSON (``--out``, default ``benchmarks/records/bench_emulator.json``)
and prints a table.

Usage: python benchmarks/bench_emulator.py [--model binspec|random-per-pixel|random-mlp]
       [--batches 1,64,1024] [--repeat R] [--numpy-dtype float32|float64] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxspec._machine import cpu_model
from jaxspec.emulator import MLP, Emulator, PerPixelNet
from jaxspec.emulator.networks import network_arrays

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import binspec_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "records"
BINSPEC_LABELS = ("teff", "logg", "feh", "mg_fe", "vmacro")
# binspec's label box (x_min, x_max of NN_normalized_spectra.npz, rounded).
BOX = np.array([[4200.0, 7000.0], [4.0, 5.0], [-0.79, 0.38], [-0.3, 0.5], [0.0, 45.0]])
TARGET_BATCH, TARGET_SPEEDUP = 1024, 5.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("binspec", "random-per-pixel", "random-mlp"), default="binspec",
                   help="network to time (binspec falls back to random-per-pixel without the data)")
    p.add_argument("--batches", default="1,64,1024", help="comma-separated batch sizes")
    p.add_argument("--repeat", type=int, default=7, help="timed repeats (median reported)")
    p.add_argument("--numpy-dtype", choices=("float32", "float64"), default=None,
                   help="numpy precision (default: the same as jaxspec)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "bench_emulator.json")
    args = p.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches must be comma-separated integers, got {args.batches!r}")
    if not args.batches or min(args.batches) < 1:
        p.error("--batches needs positive batch sizes")
    return args


def make_emulator(model: str, seed: int) -> tuple[Emulator, str]:
    """The emulator to time and a description of where it came from."""
    data = binspec_dir()
    if model == "binspec" and (data / "NN_normalized_spectra.npz").is_file():
        wave = np.load(data / "apogee_wavelength.npz")["wavelength"]
        em = Emulator.from_binspec(data / "NN_normalized_spectra.npz", BINSPEC_LABELS, wave)
        return em, f"binspec NN_normalized_spectra.npz ({data})"
    n_pix = 7214
    wave = 15100.0 * 10.0 ** (6e-6 * np.arange(n_pix))  # APOGEE-like log10 grid
    rngs = nnx.Rngs(seed)
    dtype = jnp.result_type(float)
    if model == "random-mlp":
        net = MLP(5, n_pix, (300, 300), "leaky_relu", rngs=rngs, param_dtype=dtype)
        what = "random MLP 5 -> 300 -> 300 -> 7214 (leaky ReLU)"
    else:
        net = PerPixelNet(5, n_pix, 5, "sigmoid", rngs=rngs, param_dtype=dtype)
        what = "random per-pixel network 7214 x 5 x 5 (sigmoid)"
        if model == "binspec":
            what += f"; binspec data not found in {data}"
    em = Emulator(net, BOX[:, 0], BOX[:, 1], label_names=BINSPEC_LABELS, wave=wave)
    return em, what


def numpy_network(em: Emulator, dtype) -> callable:
    """A plain numpy implementation of ``em.flux_batch``: labels (n, L) -> flux (n, P)."""
    arch = em.architecture
    p = {k: v.astype(dtype) for k, v in network_arrays(em.network).items()}
    x_min = np.asarray(em.x_min, dtype)
    span = np.asarray(em.x_max, dtype) - x_min
    scale, offset = np.asarray(em.flux_scale, dtype), np.asarray(em.flux_offset, dtype)
    half = dtype(0.5)
    if arch["kind"] == "per_pixel":
        n_hid, n_pix = arch["n_hidden"], arch["n_pix"]
        w0, b0 = p["w0"], p["b0"]
        w1, b1 = p["w1"][None], p["b1"]

        def run(labels):
            s = (labels.astype(dtype) - x_min) / span - half
            z = s @ w0
            z += b0
            np.negative(z, out=z)  # in place: sigmoid = 1 / (1 + exp(-z))
            np.exp(z, out=z)
            z += 1
            np.reciprocal(z, out=z)
            h = z.reshape(len(labels), n_hid, n_pix)
            h *= w1
            return (h.sum(axis=1) + b1) * scale + offset

        return run
    n_layers = len(arch["hidden"]) + 1
    layers = [(p[f"layers/{i}/kernel"], p[f"layers/{i}/bias"]) for i in range(n_layers)]
    slope = dtype(0.01)
    if arch["activation"] != "leaky_relu":
        raise ValueError("the numpy MLP reference implements leaky_relu only")

    def run_mlp(labels):
        x = (labels.astype(dtype) - x_min) / span - half
        for k, b in layers[:-1]:
            x = x @ k + b
            x = np.where(x > 0, x, slope * x)
        k, b = layers[-1]
        return (x @ k + b) * scale + offset

    return run_mlp


def _calls_per_repeat(fn, arg) -> int:
    """Back-to-back calls that fill about 50 ms (at least one)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(arg))
    once = max(time.perf_counter() - t0, 1e-7)
    return int(min(max(0.05 / once, 1), 2000))


def _mean_time(fn, arg, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        out = fn(arg)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / number


def time_it(fn, arg, repeat: int) -> float:
    """Median over ``repeat`` of the mean time [s per call] of back-to-back calls."""
    number = _calls_per_repeat(fn, arg)
    return statistics.median(_mean_time(fn, arg, number) for _ in range(max(1, repeat)))


def main(argv=None) -> dict:
    args = parse_args(argv)
    em, source = make_emulator(args.model, args.seed)
    precision = str(np.dtype(em.dtype))
    np_dtype = np.dtype(args.numpy_dtype or precision).type
    ref = numpy_network(em, np_dtype)
    rng = np.random.default_rng(args.seed)
    box = em.label_bounds

    flux_one = jax.jit(em.flux)
    flux_batch = jax.jit(em.flux_batch)
    rows = []
    for n in args.batches:
        labels_np = rng.uniform(box[:, 0], box[:, 1], size=(n, em.n_labels)).astype(np_dtype)
        labels = jnp.asarray(labels_np, em.dtype)
        fn, arg = (flux_one, labels[0]) if n == 1 else (flux_batch, labels)
        t0 = time.perf_counter()
        out = np.asarray(jax.block_until_ready(fn(arg))).reshape(n, em.n_pix)
        compile_s = time.perf_counter() - t0
        t_jax = time_it(fn, arg, args.repeat)
        # XLA's worker threads spin for a moment after a call; let them go idle
        # so that they do not compete with numpy's BLAS threads.
        time.sleep(0.2)
        t_np = time_it(ref, labels_np, args.repeat)
        diff = float(np.max(np.abs(out.astype(np.float64) - ref(labels_np).astype(np.float64))))
        rows.append({
            "batch": n,
            "jax_compile_s": compile_s,
            "jax_s_per_call": t_jax,
            "jax_spectra_per_s": n / t_jax,
            "numpy_s_per_call": t_np,
            "numpy_spectra_per_s": n / t_np,
            "speedup": t_np / t_jax,
            "max_abs_diff": diff,
        })

    target = next((r["speedup"] for r in rows if r["batch"] == TARGET_BATCH), None)
    result = {
        "benchmark": "bench_emulator",
        "model": args.model,
        "source": source,
        "architecture": em.architecture,
        "n_labels": em.n_labels,
        "n_pix": em.n_pix,
        "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}",
        "cpu_model": cpu_model(),
        "platform": jax.default_backend(),
        "precision": precision,
        "numpy_dtype": np.dtype(np_dtype).name,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "repeat": args.repeat,
        "rows": rows,
        "target": {"batch": TARGET_BATCH, "speedup": TARGET_SPEEDUP},
        "target_met": None if target is None else bool(target >= TARGET_SPEEDUP),
    }
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


def print_table(r: dict) -> None:
    print(f"\n{r['source']}")
    print(f"{r['device']} ({r['cpu_model']}), {r['cpu_count']} CPUs; jax {r['jax']}, flax {r['flax']}, "
          f"numpy {r['numpy']}; jaxspec {r['precision']}, numpy {r['numpy_dtype']}\n")
    print(f"{'batch':>6s} {'jaxspec spec/s':>15s} {'numpy spec/s':>13s} {'ratio':>7s} "
          f"{'jax ms/call':>12s} {'compile s':>10s} {'max|diff|':>10s}")
    for row in r["rows"]:
        print(f"{row['batch']:6d} {row['jax_spectra_per_s']:15,.0f} {row['numpy_spectra_per_s']:13,.0f} "
              f"{row['speedup']:6.1f}x {1e3 * row['jax_s_per_call']:12.3f} {row['jax_compile_s']:10.2f} "
              f"{row['max_abs_diff']:10.1e}")
    if r["target_met"] is not None:
        verdict = "met" if r["target_met"] else "NOT met"
        print(f"\ntarget: >= {r['target']['speedup']:g}x at batch {r['target']['batch']}: {verdict}")


if __name__ == "__main__":
    main()
