"""The survey map of a 10,000-spectrum stack: time to write the page, its size, and a screenshot.

The stack: ``--n`` spectra simulated by :func:`jaxspec.amortized.simulate_training_set`
(70 % binaries, default band, R 7,500, S/N 10-150) written with ``write_stack``. Timed:
:func:`jaxspec.surveymap.write_map` end to end (reading the stack, the network's features,
t-SNE with openTSNE, the model spectra, the HTML). With chromium and playwright present, the
page is opened headless, a point is clicked and a screenshot is written to
``docs/images/survey_map.png``.

    python benchmarks/bench_map.py              # 10,000 spectra (a few minutes on 2 cores)
    python benchmarks/bench_map.py --n 200 --out /tmp/map.json --screenshot /tmp/map.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "records" / "map.json")
    p.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "images" / "survey_map.png")
    a = p.parse_args(argv)
    import jax

    from jaxspec._machine import cpu_model
    from jaxspec.amortized import simulate_training_set
    from jaxspec.io.stack import write_stack
    from jaxspec.surveymap import write_map

    tmp = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    d = simulate_training_set(a.n, np.random.default_rng(a.seed))
    write_stack(tmp / "stack.h5", d["flux"], d["wave"], err=d["err"], ids=[f"sim-{i:05d}" for i in range(a.n)])
    t_sim = time.perf_counter() - t0
    info = write_map(tmp / "stack.h5", tmp / "map.html", progress=True)
    shot = None
    if shutil.which("chromium"):
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = b.new_page(viewport={"width": 800, "height": 950})
            t1 = time.perf_counter()
            page.goto((tmp / "map.html").as_uri())
            page.wait_for_function("window.mapReady === true", timeout=120000)
            load_s = time.perf_counter() - t1
            pt = page.evaluate("window.mapPointScreen(7)")
            page.mouse.move(pt["x"], pt["y"])
            page.mouse.click(pt["x"], pt["y"])
            a.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(a.screenshot))
            shot = {"path": str(a.screenshot.relative_to(ROOT)) if a.screenshot.is_relative_to(ROOT)
                    else str(a.screenshot), "page_load_s": load_s, "selected": page.evaluate("window.mapSelected")}
            b.close()
    result = {"n": a.n, "simulate_and_pack_s": t_sim, "map_seconds": info["seconds"], "page_mb": info["bytes"] / 1e6,
              "required_seconds": 300.0, "columns": info["columns"], "browser": shot,
              "device": str(jax.devices()[0].platform), "cpu": cpu_model(), "jax": jax.__version__}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(f"map of {a.n:,} spectra: {info['seconds']:.0f} s (bound 300 s), page {info['bytes'] / 1e6:.1f} MB"
          + (f", loads in {shot['page_load_s']:.1f} s in chromium" if shot else ", no browser"))
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
