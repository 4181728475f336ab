"""Peak memory of ``fit_binary_batch`` on a survey-sized stack: 10,000 spectra x 8,000 pixels.

The stack (float32 flux and errors, 2 x 320 MB) is simulated as noise around 1
on an 8,000-pixel grid inside the bundled default model's range, and fitted at
R = 7,500 with the default batch settings. Memory does not depend on how many
iterations a fit takes, so the fit runs with the cheapest settings
(``--fast``: one start, one iteration) unless ``--full`` is given. The peak
resident set size of the process (``ru_maxrss``) is reported before the fit
(inputs allocated) and after it.

    python benchmarks/bench_memory.py [--n 10000] [--pixels 8000] [--full]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "records"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--pixels", type=int, default=8_000)
    p.add_argument("--full", action="store_true", help="the default fit settings (slow)")
    p.add_argument("--out", type=Path, default=RESULTS / "memory.json")
    a = p.parse_args(argv)
    import jaxspec

    model = jaxspec.default_model()
    lo, hi = float(model.wave[0]), float(model.wave[-1])
    wave = np.geomspace(lo * 1.002, hi * 0.998, a.pixels)
    base = peak_mb()
    rng = np.random.default_rng(0)
    flux = (1.0 + 0.02 * rng.standard_normal((a.n, a.pixels))).astype(np.float32)
    err = np.full((a.n, a.pixels), 0.02, np.float32)
    inputs = peak_mb()
    options = {} if a.full else {"n_starts": 1, "n_secondary_starts": 0, "explore_iter": 1, "max_iter": 1}
    t0 = time.perf_counter()
    fit = jaxspec.fit_binary_batch(flux, wave, err, model=model, resolution=7500.0, **options)
    wall = time.perf_counter() - t0
    result = {"n": a.n, "pixels": a.pixels, "input_bytes": int(flux.nbytes + err.nbytes),
              "rss_after_import_mb": base, "rss_with_inputs_mb": inputs, "peak_rss_mb": peak_mb(),
              "fit_wall_s": wall, "settings": options or "default",
              "n_fitted": int(np.sum(np.isfinite(fit.chi2)))}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    mb = result["input_bytes"] / 1e6
    print(f"fit_binary_batch on {a.n} x {a.pixels} pixels (float32 inputs, {mb:.0f} MB)")
    print(f"peak RSS: {base:.0f} MB after import, {inputs:.0f} MB with the inputs, "
          f"{result['peak_rss_mb']:.0f} MB at the end ({wall:.0f} s)")
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
