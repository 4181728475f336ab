"""Survey runs: equal results serially and on Dask, resume after SIGKILL, failure isolation, sharding, CLI.

One small survey (8 spectra from the bundled model on 5100-5200 A, R 7,500,
S/N 50) is shared by the tests. A persistent compilation cache in a
temporary directory is shared with the subprocesses and Dask workers, so the
fitter compiles once for the whole module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import jaxspec
from jaxspec.fit.result import FLAGS
from jaxspec.io.results import read_results
from jaxspec.io.stack import write_stack
from jaxspec.survey import list_inputs, run_survey

N = 8
OPTIONS = {"rv_range": 150.0}  # a smaller TODCOR grid: the test is about the runner, not the fitter
NOT_FITTED = FLAGS["read_error"] | FLAGS["rejected"] | FLAGS["fit_error"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    import jax

    path = tmp_path_factory.mktemp("jaxcache")
    before = jax.config.jax_compilation_cache_dir
    if not before:
        jaxspec.enable_compilation_cache(path)
    yield str(jax.config.jax_compilation_cache_dir)
    if not before:
        jax.config.update("jax_compilation_cache_dir", None)


@pytest.fixture(scope="module")
def survey(tmp_path_factory, cache_dir):
    from jaxspec.models import BinaryModel
    from jaxspec.simulate import draw_binaries, simulate

    em = jaxspec.default_model()
    w = np.asarray(em.wave)
    wave = w[(w > 5100.0) & (w < 5200.0)][::2]
    bm = BinaryModel(em, wave, resolution=7500.0)
    rng = np.random.default_rng(11)
    truth = draw_binaries(bm, N, rng, rv_max=80.0)
    truth["flux_ratio"][N // 2:] = 0.0  # half single stars
    flux, err, _ = simulate(bm, truth, rng, snr=50.0)
    d = tmp_path_factory.mktemp("survey")
    write_stack(d / "stack.h5", flux.astype(np.float32), wave, err=err.astype(np.float32),
                ids=[f"star{i}" for i in range(N)], resolution=7500.0)
    return {"dir": d, "stack": d / "stack.h5", "wave": wave, "flux": flux, "err": err, "truth": truth}


@pytest.fixture(scope="module")
def serial(survey):
    out = survey["dir"] / "serial.fits"
    t = run_survey(survey["stack"], out, chunk_size=1, **OPTIONS)
    return t, out


def _assert_tables_equal(a, b):
    assert a.colnames == b.colnames
    for c in a.colnames:
        x, y = np.asarray(a[c]), np.asarray(b[c])
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=c)
        else:
            assert x.tolist() == y.tolist(), c
    assert dict(a.meta) == dict(b.meta)


def test_serial_run_fits_every_spectrum(serial, survey):
    t, out = serial
    assert len(t) == N and list(t["id"]) == [f"star{i}" for i in range(N)]
    assert np.all((np.asarray(t["flag"]) & NOT_FITTED) == 0)
    assert np.all(np.isfinite(t["rv_1"])) and np.all(t["error"] == "")
    truth = survey["truth"]
    # the bright star's velocity is recovered (S/N 50): the runner passes the right data and settings
    assert np.median(np.abs(np.asarray(t["rv_1"]) - truth["rv_1"])) < 3.0
    assert t["is_binary"][: N // 2].sum() >= N // 2 - 1 and t["is_binary"][N // 2:].sum() <= 1
    _assert_tables_equal(t, read_results(out))
    settings = json.loads(t.meta["run_settings"])
    assert settings["chunk_size"] == 1 and settings["fit_options"] == OPTIONS
    assert t["rv_1"].unit == "km / s" and t.meta["survey_n_spectra"] == N


@pytest.mark.heavy  # about 50 s (worker start-up); CI runs it in its second job (.ci/run)
def test_dask_local_cluster_equals_serial(serial, survey):
    pytest.importorskip("distributed")
    out = survey["dir"] / "dask.fits"
    t = run_survey(survey["stack"], out, chunk_size=1, workers=2, **OPTIONS)
    _assert_tables_equal(serial[0], t)
    log = survey["dir"] / "dask.fits.parts" / "events.jsonl"
    events = [json.loads(ln) for ln in log.read_text().splitlines()]
    pids = {e["pid"] for e in events}
    # two worker processes did the work
    assert len(events) == N and os.getpid() not in pids and len(pids) == 2


def test_resume_after_sigkill_recomputes_nothing_finished(serial, survey, cache_dir):
    out = survey["dir"] / "resumed.fits"
    chunks = survey["dir"] / "resumed.fits.parts" / "chunks"
    cmd = [sys.executable, "-m", "jaxspec.cli", "survey", str(survey["stack"]), "--out", str(out),
           "--chunk-size", "1", "--quiet"]
    cmd += ["--rv-range", "150"]
    env = {**os.environ, "JAXSPEC_CACHE_DIR": cache_dir}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if chunks.is_dir() and len(list(chunks.glob("chunk-*.h5"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk-*.h5")}
    assert 2 <= len(before) < N and not out.exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk-*.h5")}
    assert len(after) == N and all(after[k] == v for k, v in before.items())  # finished chunks untouched
    events = [json.loads(ln) for ln in (chunks.parent / "events.jsonl").read_text().splitlines()]
    runs = list(dict.fromkeys(e["run"] for e in events))
    second = {f"chunk-{e['chunk']:06d}.h5" for e in events if e["run"] == runs[-1]}
    assert second and not (second & set(before)) and second | set(before) == set(after)
    assert len(runs) == 2
    # a rerun with other settings is refused rather than mixing results
    with pytest.raises(ValueError, match="other settings"):
        run_survey(survey["stack"], out, chunk_size=2, rv_range=150.0)
    _assert_tables_equal(serial[0], read_results(out))


def _fits_table(path, wave, flux, err):
    from astropy.io import fits

    cols = [fits.Column(name=n, format="D", array=a)
            for n, a in (("WAVE", wave), ("FLUX", flux), ("ERR", err))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)


def test_bad_files_are_flagged_and_good_ones_fitted(survey, serial, tmp_path):
    wave, flux, err = survey["wave"], survey["flux"], survey["err"]
    d = tmp_path / "spectra"
    d.mkdir()
    for i in range(3):
        _fits_table(d / f"a_good{i}.fits", wave, flux[i], err[i])
    _fits_table(d / "b_allnan.fits", wave, np.full_like(flux[0], np.nan), err[0])
    _fits_table(d / "c_outside.fits", wave + 12000.0, flux[0], err[0])  # 17100-17200 A: outside every model
    _fits_table(d / "d_truncated.fits", wave, flux[1], err[1])
    raw = (d / "d_truncated.fits").read_bytes()
    (d / "d_truncated.fits").write_bytes(raw[: len(raw) // 2])
    (d / "e_notfits.fits").write_text("this is not a FITS file\n")
    np.savez(d / "f_shapes.npz", wave=wave, flux=flux[2][:-5], err=err[2])  # wrong shapes
    _fits_table(d / "g_negerr.fits", wave, flux[3], -err[3])
    t = run_survey(d, tmp_path / "r.ecsv", chunk_size=4, resolution=7500.0, **OPTIONS)
    assert len(t) == 9
    by = {str(s): row for s, row in zip(t["source"], t, strict=True)}
    for i in range(3):
        row = by[f"a_good{i}.fits"]
        assert row["flag"] & NOT_FITTED == 0
        assert row["error"] == "" and np.isfinite(row["rv_1"])
        # the same spectrum through a file and through the stack: the same fit
        assert row["rv_1"] == pytest.approx(float(serial[0]["rv_1"][i]), abs=1e-3)
    expect = {"b_allnan.fits": ("rejected", "all pixels are masked"),
              "c_outside.fits": ("rejected", "outside every model"),
              "d_truncated.fits": ("read_error", "d_truncated.fits"),
              "e_notfits.fits": ("read_error", "e_notfits.fits"),
              "f_shapes.npz": ("read_error", "shape"),
              "g_negerr.fits": (None, "")}
    for src, (flag, msg) in expect.items():
        row = by[src]
        if flag is None:
            continue
        assert row["flag"] & FLAGS[flag], (src, row["flag"], row["error"])
        assert msg in row["error"], (src, row["error"])
        assert np.isnan(row["rv_1"]) and not row["is_binary"]
    assert "1710" in by["c_outside.fits"]["error"] and "4950" in by["c_outside.fits"]["error"]
    assert t.meta["survey_n_not_fitted"] == sum(1 for v in expect.values() if v[0]) + (
        1 if by["g_negerr.fits"]["flag"] & (FLAGS["read_error"] | FLAGS["rejected"]) else 0)


def test_inputs_from_a_list_file(tmp_path):
    (tmp_path / "x.fits").write_text("")
    (tmp_path / "list.txt").write_text("# my survey\nx.fits\n\n/abs/y.fits\n")
    inp = list_inputs(tmp_path / "list.txt")
    assert inp.kind == "files" and inp.n == 2 and inp.files[0] == str((tmp_path / "x.fits").resolve())
    with pytest.raises(ValueError, match="does not exist"):
        list_inputs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no spectrum files"):
        list_inputs(tmp_path / "empty")
    with pytest.raises(ValueError, match="extensions"):
        run_survey(tmp_path / "list.txt", tmp_path / "out.txt")


SHARD = r"""
import numpy as np, jax, jaxspec
assert len(jax.devices()) == 2, jax.devices()
d = np.load(__import__("sys").argv[1])
kw = dict(resolution=7500.0, threads=1, rv_range=150.0)
plain = jaxspec.fit_binary_batch(d["flux"], d["wave"], d["err"], chunk_size=1, **kw)
shard = jaxspec.fit_binary_batch(d["flux"], d["wave"], d["err"], chunk_size=2, devices="all", **kw)
for k in plain.names:
    assert np.array_equal(plain.params[k], shard.params[k], equal_nan=True), k
    assert np.array_equal(plain.errors[k], shard.errors[k], equal_nan=True), k
assert np.array_equal(plain.chi2, shard.chi2) and np.array_equal(plain.flag, shard.flag)
print("SHARDED OK", plain.params["rv_1"])
"""


@pytest.mark.heavy  # about 60 s (a fresh process compiles two programs); CI runs it in its second job
def test_batch_sharded_over_two_host_devices_equals_unsharded(survey, tmp_path):
    np.savez(tmp_path / "d.npz", flux=survey["flux"][:2], err=survey["err"][:2], wave=survey["wave"])
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", SHARD, str(tmp_path / "d.npz")], env=env, capture_output=True,
                       text=True, timeout=400)
    assert r.returncode == 0 and "SHARDED OK" in r.stdout, r.stderr[-3000:]


def test_cli_fit_and_pack(survey, serial, tmp_path, capsys):
    from jaxspec.cli import main

    wave, flux, err = survey["wave"], survey["flux"], survey["err"]
    files = []
    for i in range(2):
        files.append(str(tmp_path / f"s{i}.fits"))
        _fits_table(files[-1], wave, flux[i], err[i])
    assert main(["pack", *files, "--out", str(tmp_path / "p.h5")]) == 0
    from jaxspec.io.stack import read_stack

    s = read_stack(tmp_path / "p.h5")
    np.testing.assert_allclose(s.flux, flux[:2]) and np.testing.assert_allclose(s.ivar, err[:2] ** -2.0)
    (tmp_path / "bad.fits").write_text("garbage")
    code = main(["fit", *files, str(tmp_path / "bad.fits"), "--resolution", "7500", "--rv-range", "150",
                 "--out", str(tmp_path / "fit.ecsv")])
    assert code == 1  # one file could not be fitted
    t = read_results(tmp_path / "fit.ecsv")
    assert len(t) == 3 and t["flag"][2] & FLAGS["read_error"] and np.isfinite(t["rv_1"][:2]).all()
    assert "rv_1" in capsys.readouterr().out
