"""One table of the headline figures, read from the benchmark records in ``benchmarks/records/``.

Every benchmark writes its full result as JSON under ``benchmarks/records/``
(the default ``--out``); this script reads whichever records exist and
prints one line per figure: what was measured, the value, the target where
the issue states one, and the record it came from, with the date of the
record's last commit (``uncommitted`` for a record not yet committed). A
benchmark without a record is listed as such, never filled in. The docs
build includes the same table (``--markdown PATH``), so the documentation
quotes measured numbers from one place.

    python benchmarks/report.py                      # print the table
    python benchmarks/report.py --markdown out.md    # also write it as Markdown
    python benchmarks/report.py --json               # the rows as JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

RECORDS = Path(__file__).resolve().parent / "records"


def _frac(x) -> str:
    return f"{x:.3f}"


def _recovery(d):
    b, s = d["binaries"], d.get("singles") or {}
    rows = [("global minimum found (chi2 <= truth + 1)", _frac(b["chi2_le_true_plus_1"]["fraction"]),
             f">= {b['chi2_le_true_plus_1']['required']}")]
    for k in ("rv_1", "rv_2", "teff_1", "teff_2", "flux_ratio"):
        if k in b:
            lim = b[k].get("expected_fraction_at_information_limit")
            extra = f" (information limit {lim:.3f})" if lim is not None else ""
            rows.append((f"{k} within {b[k]['tolerance']:g}", _frac(b[k]["fraction"]) + extra,
                         f">= {b[k]['required']}"))
    key = "is_binary_for_flux_ratio_ge_0.3"
    if key in b:
        rows.append(("binaries, flux ratio >= 0.3: is_binary", _frac(b[key]["fraction"]), f">= {b[key]['required']}"))
    if s:
        rows.append(("single stars: is_binary false", _frac(s["is_binary_false_fraction"]), f">= {s['required']}"))
    n = f"{d['n_binaries']} binaries" + (f" + {s['n']} singles" if s else "")
    return [(f"recovery, {d['model']} model, S/N {d['snr']:g}, {n}: {a}", v, t) for a, v, t in rows]


def _fit(d):
    j, b = d["jaxspec"], d["baseline"]
    return [
        (f"binary fit, APOGEE grid, binspec network: jaxspec ms per fit per core ({d['n']} spectra)",
         f"{j['ms_per_fit_per_core']:.0f} ms", ""),
        (f"binary fit: numpy/scipy baseline ms per fit per core ({d['n_baseline']} spectra)",
         f"{b['ms_per_fit_per_core']:.0f} ms", ""),
        ("binary fit: speed-up per core over the baseline, same run", f"{d['speedup_per_core']:.1f}x", ""),
        ("binary fit: both rvs within 2 km/s, jaxspec / baseline (same spectra)",
         f"{j['accuracy_baseline_subset']['rv_both_within_2kms']:.2f} / {b['accuracy']['rv_both_within_2kms']:.2f}", ""),
        ("first call in a fresh process (import + compile + fit), no cache / warm cache",
         f"{d['first_call_s']['no_cache']:.1f} s / {d['first_call_s']['persistent_cache']:.1f} s", ""),
    ]


def _sample(d):
    rows = []
    for case in ("default", "binspec"):
        runs = d.get(case) or []
        for r in [runs] if isinstance(runs, dict) else runs:
            rows.append((f"posterior ({case} model, {r.get('chain_method', '')}, 4 chains): wall time, min bulk ESS",
                         f"{r['sample_s']:.1f} s, ESS {r['min_ess_bulk']:.0f} ({r['slowest']})", "<= 60 s, ESS >= 400"))
    return rows


def _sun(d):
    return [(f"generator vs observed Sun {d['band'][0]:g}-{d['band'][1]:g} A, {r['list']} list: rms all / in lines",
             f"{r['rms_all']:.3f} / {r['rms_inline']:.3f}", "") for r in d["rows"]]


def _default_emulator(d):
    return [(f"default emulator vs generator, {d['n_labels']} held-out labels: rms", f"{d['rms']:.2e}",
             f"<= {d['target_rms']:g}")]


def _emulator(d):
    return [(f"emulator ({d['model']}) spectra per second, batch {r['batch']}: jaxspec (numpy)",
             f"{r['jax_spectra_per_s']:,.0f} ({r['numpy_spectra_per_s']:,.0f})", "") for r in d["rows"]]


def _generator(d):
    return [(f"line-list generator, {d['n_lines']} lines x {d['n_pix']} px: ms per spectrum batched / single "
             f"(dense numpy)", f"{d['batch_ms_per_spectrum']:.1f} / {d['single_ms']:.1f} "
             f"({d['dense']['ms_per_spectrum']:.0f})", "")]


def _information(d):
    rows = []
    for r in d["rows"]:
        c = r["criteria"]
        lims = ", ".join(f"{k} {c[k]['information_limit']:.3f}" for k in ("rv_1", "rv_2", "flux_ratio") if k in c)
        rows.append((f"information limit, {r['model']}, band {r['band']} ({r['n_pixels']} px)", lims, ""))
    return rows


def _memory(d):
    return [(f"fit_binary_batch peak memory, {d['n']:,} x {d['pixels']:,} px float32 stack",
             f"{d['peak_rss_mb'] / 1024:.1f} GB", "")]


def _survey(d):
    return [(f"survey throughput, {k}", f"{v['spectra_per_hour']:,.0f} spectra / hour", "")
            for k, v in d.items() if isinstance(v, dict) and "spectra_per_hour" in v]


def _calibration(d):
    n_in = sum(bool(v) for v in d["coverage_pass"].values()) if isinstance(d["coverage_pass"], dict) else None
    rows = [(f"posterior calibration, {d['model']} model, n = {d['n']}: convergence (r_hat < 1.01, ESS >= 400)",
             _frac(d["fraction_rhat_and_ess"]), ">= 0.95")]
    if n_in is not None:
        rows.append((f"posterior calibration, n = {d['n']}: parameters whose 68 % and 95 % coverage lie in band",
                     f"{n_in} of {len(d['coverage_pass'])}", "all"))
    return rows


def _epochs(d):
    rows = []
    s = d.get("spectra")
    if s:
        q = s["q_within_0.05_for_k_sum_ge_40"]
        rows += [
            (f"multi-epoch: q within 0.05, K1 + K2 >= 40 km/s ({q['n']} binaries, 3-6 epochs, S/N {s['snr']:g})",
             f"{q['fraction']:.3f} (median q error {s['q_err_median_for_k_sum_ge_40']:.3f})", ">= 0.90"),
            ("multi-epoch: per-epoch rv |fit - truth| / sigma <= 3", _frac(s["rv_pull_le_3"]["fraction"]), ">= 0.97"),
        ]
    o = d.get("orbits")
    if o:
        rows.append((f"orbits, >= 8 epochs well sampled in phase (n = {o['n']}): period within 1 %",
                     _frac(o["period_within_1pct"]["fraction"]), ">= 0.80"))
        po = o.get("posterior")
        if po:
            rows.append((f"orbit posteriors (n = {po['n']}): 68 % coverage of K1 / K2 / q",
                         f"{po['coverage_68_k1']:.2f} / {po['coverage_68_k2']:.2f} / {po['coverage_68_q']:.2f}",
                         "0.60-0.76"))
    sp = d.get("speed")
    if sp and "skipped" not in sp:
        rows.append((f"joint fit of 4 epochs x {sp['n_pixels']:,} px (binspec network): fits per second per core, "
                     "time against 4 separate fits", f"{sp['joint_fits_per_second_per_core']:.2f}, "
                     f"{sp['joint_over_separate']:.2f}x", ""))
    return rows


def _clone(d):
    b, lab = d["build"], d["labels"]
    return [
        (f"grid clone ({d['grid']['n_points']} generator spectra, {d['grid']['n_pix']:,} px): rms on / off the grid "
         f"(median, max)", f"{d['on_grid_rms']['median']:.4f}, {d['on_grid_rms']['max']:.4f} / "
         f"{d['off_grid']['clone_rms']['median']:.4f}, {d['off_grid']['clone_rms']['max']:.4f}", "<= 0.01 / 0.015"),
        (f"grid clone: build time ({b['n_lines']:,} lines), one spectrum", f"{b['seconds']:.0f} s, "
         f"{d['eval_ms_per_spectrum']['clone']:.1f} ms", ""),
        (f"fit_single with the clone / the generator, {lab['n']} off-grid spectra, S/N {lab['snr']:g}: teff within 100 K",
         f"{lab['clone']['teff_within_100K']:.2f} / {lab['generator']['teff_within_100K']:.2f}", ">= 0.90"),
    ]


def _latent(d):
    b = d["best"]
    return [
        (f"beta-VAE on {d['n_spectra']:,} simulated spectra (latent {d['latent_dim']}, beta {d['beta']:g}): "
         "informative dimensions, test reconstruction rms", f"{d['n_informative']} of {d['latent_dim']}, "
         f"{d['test_rms']:.4f} (noise {1 / d['snr']:.4f})", ""),
        ("beta-VAE: best |Spearman| of one dimension with rv / teff",
         f"{b['rv']['abs_spearman']:.2f} / {b['teff']['abs_spearman']:.2f}", f">= {d['target_abs_spearman']:g}"),
    ]


def _amortized(d):
    n, f = d["network"], d["fit"]
    rows = [(f"amortized network, {d['n']:,} binaries at S/N {d['snr']:g}: median |error| teff_1 / teff_2 / rv_1 / "
             "rv_2 / flux ratio (network; fit)",
             " / ".join(f"{n[k]['median_abs_error']:.3g}" for k in ("teff_1", "teff_2", "rv_1", "rv_2", "flux_ratio"))
             + "; " + " / ".join(f"{f[k]['median_abs_error']:.3g}" for k in ("teff_1", "teff_2", "rv_1", "rv_2",
                                                                              "flux_ratio")), ""),
            ("amortized network: 68 % coverage of its spread, lowest / highest over the 10 targets",
             f"{min(v['coverage_68'] for v in n.values()):.2f} / {max(v['coverage_68'] for v in n.values()):.2f}",
             "0.60-0.76")]
    h = d["headline_detection"]
    rows.append(("SB2 detection at 1 % false positives, |drv| >= 20 km/s, flux ratio >= 0.3, S/N 50: network / "
                 "delta BIC / CCF", f"{h['network']['rate']:.3f} / {h['delta_bic']['rate']:.3f} / {h['ccf']['rate']:.3f}",
                 ">= 0.95 (best)"))
    st = d["start"]
    rows.append(("fit_binary init='amortized' vs default: chi2 <= truth + 1, ms per fit",
                 f"{st['init_amortized_chi2_le_truth_plus_1']:.3f}, {1000 * st['init_amortized_s_per_fit']:.0f} vs "
                 f"{st['init_todcor_chi2_le_truth_plus_1']:.3f}, {1000 * st['init_todcor_s_per_fit']:.0f}", ""))
    return rows


def _map(d):
    return [(f"survey map of {d['n']:,} spectra (jaxspec map): time, page size", f"{d['map_seconds']:.0f} s, "
             f"{d['page_mb']:.1f} MB", "<= 300 s")]


def _real_files(d):
    rows = [r for f in d["files"] for r in f.get("rows", [])]
    fitted = [r for r in rows if not r.get("error")]
    clean = sum(1 for r in fitted if not r["flag"])
    first = [f["wall_s"] for f in d["files"] if f.get("rows") and not f["rows"][0].get("error")]
    return [(f"real survey files, jaxspec fit FILE with no model: spectra fitted of files given; flag 0 "
             f"/ warning only; first call per file (s)", f"{len(fitted)} of {len(d['files'])}; {clean} / "
             f"{len(fitted) - clean}; {min(first):.0f}-{max(first):.0f}", "every spectrum file")]


# record file -> (what it measures, extractor, command that makes it)
KNOWN = {
    "recovery_default.json": (_recovery, "bench_recovery.py --model default --n 200 --n-single 200"),
    "recovery_binspec.json": (_recovery, "bench_recovery.py --model binspec --n 100 --n-single 0"),
    "fit.json": (_fit, "bench_fit.py --n 64 --n-baseline 16"),
    "sample.json": (_sample, "bench_sample.py --num-samples 250 --cases default binspec"),
    "bench_sun.json": (_sun, "bench_sun.py"),
    "bench_default_emulator.json": (_default_emulator, "bench_default_emulator.py --n 1000"),
    "bench_emulator.json": (_emulator, "bench_emulator.py"),
    "bench_generator.json": (_generator, "bench_generator.py"),
    "information_default.json": (_information, "bench_information.py"),
    "memory.json": (_memory, "bench_memory.py"),
    "survey.json": (_survey, "bench_survey.py --n 10000"),
    "epochs.json": (_epochs, "bench_epochs.py"),
    "clone.json": (_clone, "bench_clone.py"),
    "latent.json": (_latent, "bench_latent.py"),
    "amortized.json": (_amortized, "bench_amortized.py"),
    "map.json": (_map, "bench_map.py"),
    "real_files.json": (_real_files, "bench_real_files.py"),
    "calibration_default_combined.json": (_calibration, "bench_calibration.py --combine ..."),
}


def _date(path: Path) -> str:
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cs", "--", path.name], cwd=path.parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "uncommitted"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect(records: Path = RECORDS) -> list[dict]:
    """Rows ``{figure, value, target, record, date, command}`` for every known record (missing ones noted).

    Raises:
        ValueError: a record exists but is not valid JSON or lacks the fields its extractor reads
            (the message names the file).
    """
    rows = []
    for name, (extract, command) in KNOWN.items():
        path = records / name
        if not path.exists():
            rows.append({"figure": f"({name}: no record yet)", "value": "", "target": "", "record": name,
                         "date": "", "command": f"python benchmarks/{command}"})
            continue
        try:
            figures = extract(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(f"record {path} cannot be read as a {name} record: {e!r}") from e
        date = _date(path)
        rows += [{"figure": f, "value": v, "target": t, "record": name, "date": date,
                  "command": f"python benchmarks/{command}"} for f, v, t in figures]
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table (figure, value, target, record and its date)."""
    lines = ["| figure | value | target | record (date) |", "|---|---|---|---|"]
    for r in rows:
        rec = f"`{r['record']}` ({r['date']})" if r["date"] else f"`{r['record']}`: run `{r['command']}`"
        lines.append(f"| {r['figure']} | {r['value']} | {r['target']} | {rec} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, default=RECORDS)
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown here")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    a = ap.parse_args(argv)
    rows = collect(a.records)
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        w = max(len(r["figure"]) for r in rows)
        for r in rows:
            print(f"{r['figure']:<{w}}  {r['value']:<34}  {r['target']:<20}  {r['record']} {r['date']}")
    if a.markdown:
        a.markdown.parent.mkdir(parents=True, exist_ok=True)
        a.markdown.write_text(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
