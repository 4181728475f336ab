"""Calibrate the built-in line list on the observed solar spectrum.

Fits bounded per-line log gf offsets (``jaxspec.linelist.calibrate.calibrate_loggf``)
so that the generator at the Sun's labels (5772 K, 4.438, 0.0), rotated by
vsini = 1.9 km/s and convolved to the UVES resolution, reproduces the
observed UVES solar spectrum (``shared/data/atomic/solar_spectrum``, air
wavelengths converted to vacuum). The spectrum (4835-6723 A) is processed in
chunks of ``--chunk`` A; each line is fitted in the chunk that holds its
centre, with ``--margin`` A of model on both sides. Lines outside the
observed coverage, in its gaps, or too weak in the Sun to be constrained keep
a zero offset. The offsets are written into
``src/jaxspec/data/linelist_builtin.npz`` (field ``loggf_offset``) beside the
unchanged laboratory values, so ``builtin_linelist(calibrated=False)`` still
gives the original list.

Usage: python scripts/calibrate_sun.py [--chunk 150] [--steps 150] [--dry-run]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from jaxspec.demo import (
    SUN_LABELS,
    SUN_VSINI,
    UVES_RESOLUTION,
    find_solar_spectrum,
    load_solar_spectrum,
)
from jaxspec.linelist.builtin import builtin_linelist
from jaxspec.linelist.calibrate import calibrate_loggf
from jaxspec.linelist.generator import LineListGenerator

DATA = Path(__file__).resolve().parents[1] / "src" / "jaxspec" / "data" / "linelist_builtin.npz"
BOUND = 1.0  # [dex]
RIDGE = 1e-5


def calibrate_range(linelist, wave, flux, lo, hi, *, chunk, margin, steps, log=print):
    """Offsets (len(linelist),) from chunked calibration over [lo, hi] [A, vacuum]."""
    offsets = np.zeros(len(linelist))
    edges = np.arange(lo, hi, chunk)
    for a in edges:
        b = min(a + chunk, hi)
        sel = (wave >= a) & (wave < b)
        if sel.sum() < 100:
            continue
        t0 = time.perf_counter()
        gen = LineListGenerator(linelist, a - margin, b + margin)
        res = calibrate_loggf(
            gen,
            SUN_LABELS,
            wave[sel],
            flux[sel],
            vsini=SUN_VSINI,
            resolution=UVES_RESOLUTION,
            rv=0.3,
            bound=BOUND,
            ridge=RIDGE,
            steps=steps,
        )
        offsets[gen.line_index[res.fitted]] = res.offsets[res.fitted]
        log(
            f"{a:7.1f}-{b:7.1f} A: {int(res.fitted.sum()):5d} lines, rms {res.rms_before:.4f} -> "
            f"{res.rms_after:.4f}, rv {res.rv:+.3f} km/s ({time.perf_counter() - t0:.0f} s)"
        )
    return offsets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=float, default=150.0)
    ap.add_argument("--margin", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--wave-min", type=float, default=4840.0)
    ap.add_argument("--wave-max", type=float, default=6720.0)
    ap.add_argument("--dry-run", action="store_true", help="do not write the package data file")
    args = ap.parse_args(argv)
    path = find_solar_spectrum()
    if path is None:
        raise SystemExit("observed solar spectrum not found; set JAXSPEC_SHARED_DATA")
    wave, flux = load_solar_spectrum(path, args.wave_min, args.wave_max)
    ll = builtin_linelist(calibrated=False)
    offsets = calibrate_range(
        ll, wave, flux, args.wave_min, args.wave_max,
        chunk=args.chunk, margin=args.margin, steps=args.steps,
    )
    n = int(np.count_nonzero(offsets))
    print(f"{n} lines calibrated; |offset| median {np.median(np.abs(offsets[offsets != 0])):.3f} dex, "
          f"at the bound: {int(np.sum(np.abs(offsets) > 0.95 * BOUND))}")
    if args.dry_run:
        return offsets
    with np.load(DATA, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["loggf_offset"] = offsets.astype(np.float32)
    np.savez_compressed(DATA, **arrays)
    print(f"wrote {DATA}")
    return offsets


if __name__ == "__main__":
    main()
