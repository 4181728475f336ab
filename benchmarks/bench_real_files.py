"""Every real survey file fitted as a new user would: ``jaxspec fit FILE --out ...``, no model argument.

For each spectrum file in the survey-files folder (``$JAXSPEC_SHARED_DATA/survey-files``,
default ``../shared/data/survey-files`` beside the checkout) the command line runs in a fresh process,
so the time includes the import, reading the file, choosing the model and compiling the fit
(with the persistent compilation cache in a fresh folder, i.e. cold). The APOGEE model is
installed first from binspec's network (``$JAXSPEC_BINSPEC_DATA``, default ``../shared/data/binspec``)
into a temporary models folder with ``jaxspec models install binspec``, as the README says.

A GALAH star is one spectrum in four CCD files: only its CCD 1 file is given (the reader
gathers the other three). Files that are not spectra (GALAH's night table) are run too: the
error message they get is part of the record.

Writes JSON (``--out``, default ``benchmarks/records/real_files.json``) and prints a Markdown
table (file, survey, model and pixels used, teff, logg, [Fe/H], rv, is_binary, flag or error).

Usage: python benchmarks/bench_real_files.py [--only SUBSTRING] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import binspec_dir, shared_data_dir  # noqa: E402


def _existing(p: Path, env: str) -> Path:
    if not p.is_dir():
        sys.exit(f"{p} not found: set ${env}")
    return p


def spectrum_files(base: Path) -> list[Path]:
    """Every FITS file of the folder, a GALAH star once (its CCD 1 file)."""
    files = []
    for f in sorted(base.rglob("*.fits")):
        stem = f.stem
        if "galah" in f.parts and stem.isdigit() and len(stem) == 16 and stem[-1] in "234":
            continue
        files.append(f)
    return files


def _row(table, i):
    def get(name, fmt):
        if name not in table.colnames:
            return None
        v = table[name][i]
        try:
            return fmt(v)
        except (TypeError, ValueError):
            return None

    return {
        "teff_1": get("teff_1", float), "teff_2": get("teff_2", float),
        "logg_1": get("logg_1", float), "logg_2": get("logg_2", float),
        "feh": get("feh", float), "rv_1": get("rv_1", float), "rv_2": get("rv_2", float),
        "flux_ratio": get("flux_ratio", float),
        "single_teff": get("single_teff_1", float), "single_rv": get("single_rv_1", float),
        "is_binary": get("is_binary", bool), "flag": get("flag", int),
        "model": get("model", str), "error": get("error", str), "flag_message": get("flag_message", str),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="only files whose path contains this")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "records" / "real_files.json"))
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per file")
    args = ap.parse_args(argv)
    from jaxspec.io.results import read_results

    base = _existing(shared_data_dir() / "survey-files", "JAXSPEC_SHARED_DATA")
    binspec = _existing(binspec_dir(), "JAXSPEC_BINSPEC_DATA")
    tmp = Path(tempfile.mkdtemp(prefix="jaxspec-real-"))
    env = dict(os.environ, JAXSPEC_MODELS_DIR=str(tmp / "models"), XDG_CACHE_HOME=str(tmp / "cache"))
    t = time.perf_counter()
    subprocess.run(["jaxspec", "models", "install", "binspec", str(binspec)], env=env, check=True)
    install_s = time.perf_counter() - t
    rows = []
    for f in spectrum_files(base):
        if args.only and args.only not in str(f):
            continue
        out = tmp / (f.stem + ".ecsv")
        t = time.perf_counter()
        proc = subprocess.run(["jaxspec", "fit", str(f), "--out", str(out)], env=env, capture_output=True,
                              text=True, timeout=args.timeout)
        wall = time.perf_counter() - t
        rec = {"file": str(f.relative_to(base)), "exit": proc.returncode, "wall_s": round(wall, 1)}
        if out.is_file():
            table = read_results(out)
            rec["n_rows"] = len(table)
            rec["rows"] = [_row(table, i) for i in range(len(table))]
        else:
            rec["stderr"] = proc.stderr.strip().splitlines()[-3:]
        rows.append(rec)
        print(f"{rec['file']}: exit {proc.returncode}, {wall:.0f} s", flush=True)
    record = {
        "benchmark": "bench_real_files", "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "install_s": round(install_s, 1), "files": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(markdown(record))
    return 0


def _fmt(v, f):
    return "" if v is None else format(v, f)


def markdown(record) -> str:
    """The README table of a record."""
    lines = ["| file | model (pixels used) | teff_1 / teff_2 [K] | logg_1 | [Fe/H] | rv_1 / rv_2 [km/s] "
             "| is_binary | flag | time [s] |", "|---|---|---|---|---|---|---|---|---|"]
    for rec in record["files"]:
        for r in rec.get("rows", [{}]) or [{}]:
            if r.get("error"):
                status = f"not fitted: {r['error']}"
                lines.append(f"| {rec['file']} | | | | | | | {status} | {rec['wall_s']:.0f} |")
                continue
            if not r:
                lines.append(f"| {rec['file']} | | | | | | | exit {rec['exit']}: "
                             f"{' '.join(rec.get('stderr', []))} | {rec['wall_s']:.0f} |")
                continue
            flag = "0" if not r["flag"] else f"{r['flag']}: {r.get('flag_message', '')}"
            lines.append(
                f"| {rec['file']} | {r['model'] or ''} | {_fmt(r['teff_1'], '.0f')} / {_fmt(r['teff_2'], '.0f')} "
                f"| {_fmt(r['logg_1'], '.2f')} | {_fmt(r['feh'], '+.2f')} "
                f"| {_fmt(r['rv_1'], '.1f')} / {_fmt(r['rv_2'], '.1f')} | {r['is_binary']} | {flag} "
                f"| {rec['wall_s']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
