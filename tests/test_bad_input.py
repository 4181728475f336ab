"""A catalogue of bad inputs to the public calls and the command line, one named case each.

Every case either raises an exception whose type and message name the problem
(``Case(..., raises=ValueError, match="...")``), or, where bad data must not stop the work
(masked pixels, a bad row of a batch or a stack, a corrupt file in a survey), runs and
checks that the result is flagged with a message naming the problem, that the good part is
fitted and that nothing non-finite hides behind flag 0.

Fits are cheap: the toy model (:func:`tests._shared.toy_model`) on one 191-pixel grid
(:func:`tests._shared.toy_wave`), so the fitter compiles once for the whole module (and is
shared with ``tests/test_properties.py``). Cases on the real survey files copy them into a
temporary directory first (never touching the shared data) and skip when they are absent.

How a killed run resumes without recomputing finished chunks is tested in
``tests/test_survey.py::test_resume_after_sigkill_recomputes_nothing_finished``; here
``survey_interrupted_keeps_finished_chunk_and_flags_bad_row`` checks the same in-process with
a bad row in the stack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from jaxspec.emulator import Emulator
from jaxspec.fit.binary import fit_binary, fit_binary_batch, fit_single
from jaxspec.fit.result import FLAGS
from jaxspec.io import SpectrumFormatError, read_spectrum, read_stack, stack_info, write_stack
from jaxspec.io.stack import StackWriter
from jaxspec.models import BinaryModel
from jaxspec.survey import run_survey
from tests._shared import SHARED_DATA, toy_model, toy_wave
from tests.io._spectra_files import survey_file, write_apstar, write_boss
from tests.test_survey import _fits_table

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

WAVE = toy_wave()
P = WAVE.size
OPTIONS = {"rv_range": 150.0}  # the toy benchmark's TODCOR grid (tests/test_properties.py: the same)
TRUTH = {"teff_1": 5900.0, "logg_1": 4.4, "teff_2": 5000.0, "logg_2": 4.7, "feh": -0.3, "rv_1": -30.0,
         "rv_2": 35.0, "vsini_1": 10.0, "vsini_2": 6.0, "flux_ratio": 0.5}
NOT_FITTED = FLAGS["read_error"] | FLAGS["rejected"] | FLAGS["fit_error"]
REAL_FILE = "apogee/aspcapStar-r6-l30e.2-2M11194647+0820356.fits"


# ------------------------------------------------------------------ shared inputs


class Ctx:
    """Inputs shared by the cases: the toy model, a simulated binary on WAVE, a scratch directory."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.model = toy_model()
        bm = BinaryModel(self.model, WAVE)
        rng = np.random.default_rng(5)
        self.err = np.full(P, 0.01)
        self.flux = np.asarray(bm.flux(TRUTH), dtype=np.float64) + rng.normal(0.0, 0.01, P)
        self._n = 0

    def dir(self, name: str) -> Path:
        """A fresh directory for one case."""
        self._n += 1
        d = self.tmp / f"{self._n:02d}-{name}"
        d.mkdir()
        return d

    def fit(self, flux=None, wave=None, err=None, fn=fit_binary, **kw):
        kw.setdefault("model", self.model)
        return fn(self.flux if flux is None else flux, WAVE if wave is None else wave,
                  **({"err": self.err if err is None else err} if "ivar" not in kw else {}),
                  **{**OPTIONS, **kw})

    def batch(self, flux, err=None, **kw):
        return fit_binary_batch(flux, WAVE, err=np.broadcast_to(self.err, flux.shape) if err is None else err,
                                model=self.model, **{**OPTIONS, **kw})

    def stack(self, path, flux, err, **kw):
        write_stack(path, flux, WAVE, err=err, ids=[f"star{i}" for i in range(len(flux))], **kw)
        return path

    def payne_npz(self):
        """A tiny network in The Payne's npz layout (3 labels, 6 pixels) and its wavelengths."""
        npz = self.tmp / "payne.npz"
        if not npz.exists():
            rng = np.random.default_rng(0)
            np.savez(npz, w_array_0=rng.normal(size=(4, 3)), b_array_0=np.zeros(4),
                     w_array_1=rng.normal(size=(4, 4)), b_array_1=np.zeros(4),
                     w_array_2=0.01 * rng.normal(size=(6, 4)), b_array_2=np.ones(6),
                     x_min=np.zeros(3), x_max=np.ones(3))
        return npz, 5000.0 + np.arange(6.0)

    def emulator(self, **kw):
        """The tiny network as an Emulator with labels a, b, c in [0, 1]."""
        npz, wave = self.payne_npz()
        return Emulator.from_payne(npz, ("a", "b", "c"), wave, **kw)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Ctx(tmp_path_factory.mktemp("bad_input"))


def _values(fit):
    """Every parameter, error and chi-square of a single fit (name -> value)."""
    v = {k: fit.params[k] for k in fit.names}
    v.update({f"{k}_err": fit.errors[k] for k in fit.names})
    v.update({f"single_{k}": fit.single_params[k] for k in fit.names})
    v.update(chi2=fit.chi2, single_chi2=fit.single_chi2)
    return v


def _assert_finite_fit(fit, n_masked):
    """A fit that masked ``n_masked`` pixels and is finite everywhere (no silent NaN)."""
    bad = sorted(k for k, v in _values(fit).items() if not np.isfinite(v))
    assert not bad, f"non-finite {bad} (flag {int(fit.flag)}: {fit.flag_message})"
    assert int(fit.flag) & (FLAGS["non_finite"] | FLAGS["too_few_pixels"]) == 0, fit.flag_message
    assert int(fit.n_pixels) == P - n_masked
    assert int(np.sum(fit.ivar == 0)) == n_masked and np.all(np.isfinite(fit.flux))
    assert abs(float(fit.params["rv_1"]) - TRUTH["rv_1"]) < 5.0  # still the right answer


def _copy_real(ctx, name) -> Path:
    """A copy of the real survey file in a fresh directory (skips when the shared data are absent)."""
    src = survey_file(REAL_FILE)
    dst = ctx.dir(name) / src.name
    dst.write_bytes(src.read_bytes())
    return dst


def _truncate(path: Path, keep: float = 0.5) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def _cli(argv):
    """Run ``jaxspec.cli.main(argv)`` in-process: (exit code, stdout, stderr); no compilation cache."""
    from jaxspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("JAXSPEC_NO_CACHE")
    os.environ["JAXSPEC_NO_CACHE"] = "1"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as e:  # argparse's usage errors
                code = e.code
    finally:
        if old is None:
            os.environ.pop("JAXSPEC_NO_CACHE", None)
        else:
            os.environ["JAXSPEC_NO_CACHE"] = old
    return code, out.getvalue(), err.getvalue()


def _cli_error(argv, *words):
    """The command fails: a non-zero exit code, no traceback, and a message on stderr naming the problem."""
    code, _, err = _cli(argv)
    assert code not in (0, None), (code, err)
    assert "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


# ------------------------------------------------------------------ cases that run


def _masked_flux(ctx, value):
    flux = ctx.flux.copy()
    flux[[3, 50, 120]] = value
    _assert_finite_fit(ctx.fit(flux), 3)


def _masked_err(ctx, value):
    err = ctx.err.copy()
    err[[7, 70, 170, 171]] = value
    _assert_finite_fit(ctx.fit(err=err), 4)


def _masked_ivar_zero(ctx):
    ivar = np.full(P, 1e4)
    ivar[:10] = 0.0
    _assert_finite_fit(ctx.fit(ivar=ivar), 10)


def _batch_bad_rows_flagged(ctx):
    flux = np.stack([ctx.flux, np.full(P, np.nan), ctx.flux])
    err = np.stack([ctx.err, ctx.err, ctx.err])
    err[2, 5:] = np.inf  # too few usable pixels
    b = ctx.batch(flux, err)
    assert b.ok[0] and all(np.isfinite(v) for v in _values(b[0]).values())
    for i in (1, 2):
        assert b.flag[i] & FLAGS["too_few_pixels"] and "too few pixels" in b.flag_message[i]
        assert np.isnan(b.params["rv_1"][i]) and np.isnan(b.chi2[i]) and not b.is_binary[i]


def _fit_huge_flux_flagged(ctx):
    """Finite flux beyond float32's range: the fit cannot be computed; flagged, never silent NaN."""
    fit = ctx.fit(ctx.flux * 1e300)
    assert int(fit.flag) & FLAGS["non_finite"] and "non finite" in fit.flag_message


def _fit_zero_flux_flagged_or_finite(ctx):
    """Flux of zeros with huge errors: nothing constrains the labels (infinite variance in float32)."""
    fit = ctx.fit(np.zeros(P), err=np.full(P, 1e9))
    bad = [k for k, v in _values(fit).items() if not np.isfinite(v)]
    assert int(fit.flag) != 0 or not bad, bad
    if bad:
        assert "non finite" in fit.flag_message


def _survey_corrupt_file_flagged(ctx):
    d = ctx.dir("survey_files")
    spectra = d / "spectra"
    spectra.mkdir()
    for i in range(2):
        _fits_table(spectra / f"good{i}.fits", WAVE, ctx.flux, ctx.err)
    (spectra / "corrupt.fits").write_bytes(np.random.default_rng(1).bytes(6000))
    _fits_table(spectra / "truncated.fits", WAVE, ctx.flux, ctx.err)
    _truncate(spectra / "truncated.fits")
    t = run_survey(spectra, d / "r.ecsv", model=ctx.model, chunk_size=2, progress=False, **OPTIONS)
    by = {str(s): row for s, row in zip(t["source"], t, strict=True)}
    assert len(t) == 4 and t.meta["survey_n_not_fitted"] == 2
    for name, words in (("corrupt.fits", "FITS"), ("truncated.fits", "truncated")):
        assert by[name]["flag"] & FLAGS["read_error"] and words in by[name]["error"], by[name]["error"]
        assert np.isnan(by[name]["rv_1"])
    for i in range(2):
        row = by[f"good{i}.fits"]
        assert row["flag"] & NOT_FITTED == 0 and np.isfinite(row["rv_1"]) and row["error"] == ""


def _survey_stack_bad_rows_flagged(ctx):
    d = ctx.dir("survey_stack")
    flux = np.stack([ctx.flux] * 5)
    err = np.stack([ctx.err] * 5)
    flux[1] = np.nan  # all pixels masked
    err[3, 10] = -0.01  # a negative error
    ctx.stack(d / "s.h5", flux, err)
    t = run_survey(d / "s.h5", d / "r.fits", model=ctx.model, chunk_size=5, progress=False, **OPTIONS)
    assert list(t["id"]) == [f"star{i}" for i in range(5)]
    assert t["flag"][1] & FLAGS["rejected"] and "all pixels are masked" in t["error"][1]
    assert t["flag"][3] & FLAGS["rejected"] and "negative" in t["error"][3]
    for i in (0, 2, 4):
        assert t["flag"][i] & NOT_FITTED == 0 and np.isfinite(t["rv_1"][i]) and t["error"][i] == ""
    assert t["rv_1"][0] == t["rv_1"][2] == t["rv_1"][4]  # one spectrum, one answer


def _survey_stack_corrupt_row_flagged(ctx):
    """A stack whose HDF5 chunk for one row is damaged (gzip data overwritten): that row is a
    read_error, the rows before and after it in the same survey chunk are fitted."""
    import h5py

    d = ctx.dir("survey_corrupt_row")
    with StackWriter(d / "s.h5", WAVE, uncertainty="err", compression="gzip", rows_per_chunk=1) as w:
        for i in range(3):
            w.append(ctx.flux[None], ctx.err[None], ids=[f"star{i}"])
    with h5py.File(d / "s.h5", "r") as f:
        info = f["flux"].id.get_chunk_info_by_coord((1, 0))
    with open(d / "s.h5", "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 3)
        fh.write(b"\x00\xff" * (info.size // 6))
    with pytest.raises(OSError):
        read_stack(d / "s.h5", 1, 2)  # the row is unreadable indeed
    t = run_survey(d / "s.h5", d / "r.fits", model=ctx.model, chunk_size=3, progress=False, **OPTIONS)
    assert list(t["id"]) == ["star0", "star1", "star2"]
    assert t["flag"][1] & FLAGS["read_error"] and "s.h5" in t["source"][1] and t["error"][1]
    assert all(t["flag"][i] & NOT_FITTED == 0 and np.isfinite(t["rv_1"][i]) for i in (0, 2))


def _survey_interrupted_keeps_chunks(ctx, monkeypatch):
    """A run stopped after its first chunk (KeyboardInterrupt in the second) keeps that chunk; the
    rerun fits only the rest, and the bad row in the last chunk is flagged, not fatal."""
    import jaxspec.survey as survey

    d = ctx.dir("survey_interrupted")
    flux = np.stack([ctx.flux] * 3)
    flux[2, :] = np.inf  # a bad row: all pixels masked
    ctx.stack(d / "s.h5", flux, np.stack([ctx.err] * 3))
    calls = []
    real = survey._fit_chunk

    def stop_second(*a, **k):
        calls.append(a[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(survey, "_fit_chunk", stop_second)
    with pytest.raises(KeyboardInterrupt):
        run_survey(d / "s.h5", d / "r.fits", model=ctx.model, chunk_size=1, progress=False, **OPTIONS)
    chunks = d / "r.fits.parts" / "chunks"
    first = chunks / "chunk-000000.h5"
    assert sorted(p.name for p in chunks.glob("chunk-*.h5")) == [first.name] and not (d / "r.fits").exists()
    mtime = first.stat().st_mtime_ns
    monkeypatch.setattr(survey, "_fit_chunk", real)
    t = run_survey(d / "s.h5", d / "r.fits", model=ctx.model, chunk_size=1, progress=False, **OPTIONS)
    assert first.stat().st_mtime_ns == mtime  # the finished chunk was neither lost nor recomputed
    events = [json.loads(ln) for ln in (chunks.parent / "events.jsonl").read_text().splitlines()]
    assert sorted(e["chunk"] for e in events) == [0, 1, 2]  # chunk 0 once (first run), 1 and 2 once
    assert len(t) == 3 and t["flag"][2] & FLAGS["rejected"] and "masked" in t["error"][2]
    assert all(t["flag"][i] & NOT_FITTED == 0 and np.isfinite(t["rv_1"][i]) for i in (0, 1))


def _cli_fit_missing_file_flagged(ctx):
    code, out, err = _cli(["fit", ctx.tmp / "no_such_spectrum.fits"])
    assert code == 1 and "Traceback" not in err  # 1: a file could not be fitted
    assert "no such file" in out and str(FLAGS["read_error"]) in out


# ------------------------------------------------------------------ files


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _written(ctx, writer, name) -> Path:
    path = ctx.dir(name) / name
    writer(path)
    return path


def _empty_primary(ctx) -> Path:
    from astropy.io import fits

    path = ctx.dir("layout") / "empty.fits"
    fits.PrimaryHDU().writeto(path)
    return path


def _no_flux_table(ctx) -> Path:
    from astropy.io import fits

    path = ctx.dir("layout") / "noflux.fits"
    cols = [fits.Column("WAVE", "D", array=WAVE), fits.Column("ERR", "D", array=ctx.err)]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def _no_wcs_image(ctx) -> Path:
    from astropy.io import fits

    path = ctx.dir("layout") / "nowcs.fits"
    fits.PrimaryHDU(ctx.flux).writeto(path)
    return path


def _cube(ctx) -> Path:
    from astropy.io import fits

    path = ctx.dir("layout") / "cube.fits"
    fits.PrimaryHDU(np.ones((3, 4, 5))).writeto(path)
    return path


def _npz(ctx, **arrays) -> Path:
    path = ctx.dir("npz") / "s.npz"
    np.savez(path, **{"wave": WAVE, "flux": ctx.flux, "err": ctx.err, **arrays})
    return path


def _plain_h5(ctx) -> Path:
    import h5py

    path = ctx.dir("h5") / "plain.h5"
    with h5py.File(path, "w") as f:
        f["flux"] = np.ones((2, 3))
    return path


def _small_stack(ctx) -> Path:
    return ctx.stack(ctx.dir("stack") / "s.h5", np.stack([ctx.flux] * 4), np.stack([ctx.err] * 4))


def _saved_emulator(ctx) -> Path:
    path = ctx.dir("em") / "em.h5"
    ctx.emulator().save(path)
    return path


def _binspec_npz() -> Path:
    root = Path(os.environ.get("JAXSPEC_BINSPEC_DATA") or SHARED_DATA / "binspec")
    path = root / "NN_normalized_spectra.npz"
    if not path.is_file():
        pytest.skip(f"binspec network {path} not found (set JAXSPEC_BINSPEC_DATA or JAXSPEC_SHARED_DATA)")
    return path


# ------------------------------------------------------------------ the catalogue


@dataclasses.dataclass(frozen=True)
class Case:
    run: Callable  # run(ctx) (or run(ctx, monkeypatch) with needs_monkeypatch)
    raises: type | tuple | None = None  # the exception expected, or None: run() checks its result
    match: str | None = None  # regex the message must match
    needs_monkeypatch: bool = False


def case(id_, run, raises=None, match=None, **kw):
    return pytest.param(Case(run, raises, match, **kw), id=id_)


def _unsorted(w):
    w = w.copy()
    w[[40, 41]] = w[[41, 40]]
    return w


def _with(w, i, v):
    w = w.copy()
    w[i] = v
    return w


CASES = [
    # ---- fit_binary / fit_single / fit_binary_batch: shapes
    case("fit_flux_shorter_than_wave", lambda c: c.fit(c.flux[:-1]), ValueError, r"flux has shape \(190,\)"),
    case("fit_err_shape_mismatch", lambda c: c.fit(err=c.err[:-3]), ValueError, r"err has shape \(188,\)"),
    case("fit_ivar_shape_mismatch", lambda c: c.fit(ivar=np.ones(P + 1)), ValueError, "ivar has shape"),
    case("fit_2d_flux_in_fit_binary", lambda c: c.fit(np.stack([c.flux] * 2), err=np.stack([c.err] * 2)),
         ValueError, "fits one spectrum"),
    case("fit_2d_wave", lambda c: c.fit(wave=WAVE[None]), ValueError, "wave must be 1-D"),
    case("fit_single_err_shape_mismatch", lambda c: c.fit(err=c.err[None], fn=fit_single), ValueError,
         "err has shape"),
    case("batch_1d_flux", lambda c: fit_binary_batch(c.flux, WAVE, c.err, model=c.model), ValueError,
         r"\(N, P\) stack"),
    case("batch_3d_flux", lambda c: fit_binary_batch(c.flux[None, None], WAVE, model=c.model), ValueError,
         r"\(N, P\) stack"),
    case("batch_err_rows_mismatch", lambda c: c.batch(np.stack([c.flux] * 2), c.err[None]), ValueError,
         r"err has shape \(1, 191\)"),
    case("fit_flux_not_numeric", lambda c: c.fit(np.array(["x"] * P)), ValueError, "flux is not a numeric"),
    case("fit_flux_complex", lambda c: c.fit(c.flux + 1j), ValueError, "flux is complex"),
    # ---- wavelengths
    case("fit_wave_reversed", lambda c: c.fit(wave=WAVE[::-1]), ValueError, "not strictly increasing"),
    case("fit_wave_unsorted_pair", lambda c: c.fit(wave=_unsorted(WAVE)), ValueError,
         "not strictly increasing.*index 41"),
    case("fit_wave_duplicated", lambda c: c.fit(wave=_with(WAVE, 60, WAVE[59])), ValueError,
         "not strictly increasing.*index 60"),
    case("fit_wave_nan", lambda c: c.fit(wave=_with(WAVE, 10, np.nan)), ValueError, "not finite.*index 10"),
    case("fit_wave_inf", lambda c: c.fit(wave=_with(WAVE, P - 1, np.inf)), ValueError, "wave is not finite"),
    case("fit_wave_negative", lambda c: c.fit(wave=WAVE - 6000.0), ValueError, "not positive"),
    case("fit_too_few_wavelengths", lambda c: c.fit(c.flux[:5], WAVE[:5], c.err[:5]), ValueError,
         "at least 10 points"),
    case("fit_no_overlap_with_model", lambda c: c.fit(wave=WAVE + 1000.0), ValueError,
         r"6001.50-6078.16 A do not lie inside the model's wavelength range 5000.00-5079.\d\d A"),
    case("fit_partial_overlap_with_model", lambda c: c.fit(wave=WAVE + 40.0), ValueError,
         "do not lie inside the model's wavelength range"),
    case("batch_wave_unsorted", lambda c: fit_binary_batch(c.flux[None], WAVE[::-1], model=c.model),
         ValueError, "not strictly increasing"),
    # ---- masked pixels and errors
    case("fit_nan_flux_pixels_are_masked", lambda c: _masked_flux(c, np.nan)),
    case("fit_inf_flux_pixels_are_masked", lambda c: _masked_flux(c, -np.inf)),
    case("fit_nan_err_pixels_are_masked", lambda c: _masked_err(c, np.nan)),
    case("fit_zero_err_pixels_are_masked", lambda c: _masked_err(c, 0.0)),
    case("fit_zero_ivar_pixels_are_masked", _masked_ivar_zero),
    case("fit_all_pixels_masked_nan_flux", lambda c: c.fit(np.full(P, np.nan)), ValueError,
         "all pixels are masked"),
    case("fit_all_pixels_masked_inf_err", lambda c: c.fit(err=np.full(P, np.inf)), ValueError,
         "all pixels are masked"),
    case("fit_all_errors_zero", lambda c: c.fit(err=np.zeros(P)), ValueError, "all pixels are masked"),
    case("fit_single_all_ivar_zero", lambda c: c.fit(ivar=np.zeros(P), fn=fit_single), ValueError,
         "all pixels are masked"),
    # 10 free parameters plus the continuum: 3 coefficients at degree 2 (normalized flux), at
    # least 1 where continuum_degree="auto" finds the 8 pixels not normalized
    case("fit_too_few_usable_pixels", lambda c: c.fit(err=_with(np.full(P, np.inf), slice(0, 8), 0.01)),
         ValueError, r"only 8 usable pixels for 1[13] parameters"),
    case("fit_negative_err", lambda c: c.fit(err=_with(c.err, 4, -0.01)), ValueError,
         "err has negative values"),
    case("fit_negative_ivar", lambda c: c.fit(ivar=_with(np.ones(P), 4, -1.0)), ValueError,
         "ivar has negative values"),
    case("fit_err_and_ivar_both", lambda c: fit_binary(c.flux, WAVE, c.err, np.ones(P), model=c.model),
         ValueError, "not both"),
    case("fit_huge_finite_flux_is_flagged", _fit_huge_flux_flagged),
    case("fit_zero_flux_huge_err_flagged_or_finite", _fit_zero_flux_flagged_or_finite),
    case("batch_all_nan_row_flagged_others_fitted", _batch_bad_rows_flagged),
    case("batch_negative_err_row_refused_before_fitting",
         lambda c: c.batch(np.stack([c.flux] * 2), np.stack([c.err, -c.err])), ValueError,
         "err has negative values"),
    # ---- resolution
    case("fit_resolution_zero", lambda c: c.fit(resolution=0.0), ValueError, "resolution must be > 0"),
    case("fit_resolution_negative", lambda c: c.fit(resolution=-7500.0), ValueError,
         "resolution must be > 0"),
    case("fit_resolution_nan", lambda c: c.fit(resolution=np.nan), ValueError, "resolution must be > 0"),
    case("fit_resolution_not_numeric", lambda c: c.fit(resolution="R7500"), ValueError,
         "resolution must be a number"),
    case("fit_resolution_wrong_length", lambda c: c.fit(resolution=np.full(P - 1, 7500.0)), ValueError,
         r"resolution has shape \(190,\)"),
    case("fit_resolution_per_pixel_negative", lambda c: c.fit(resolution=_with(np.full(P, 7500.0), 3, -1.0)),
         ValueError, "must be > 0"),
    # ---- labels, fixed values and options
    case("fit_fixed_teff_outside_box", lambda c: c.fit(fixed={"teff_1": 9000.0}), ValueError,
         r"'teff_1': fixed value 9000.0 lies outside \[4500.0, 6500.0\]"),
    case("fit_fixed_logg_nan", lambda c: c.fit(fixed={"logg_2": np.nan}), ValueError, "'logg_2'.*nan"),
    case("fit_fixed_flux_ratio_above_one", lambda c: c.fit(fixed={"flux_ratio": 1.5}), ValueError,
         "'flux_ratio'.*outside"),
    case("fit_single_fixed_vsini_negative", lambda c: c.fit(fixed={"vsini_1": -3.0}, fn=fit_single),
         ValueError, "'vsini_1'.*outside"),
    case("fit_fixed_rv_beyond_fit_bounds", lambda c: c.fit(fixed={"rv_2": 900.0}), ValueError,
         "'rv_2'.*outside"),
    case("fit_fixed_unknown_parameter", lambda c: c.fit(fixed={"teff_3": 5000.0}), ValueError,
         r"unknown parameters \['teff_3'\]"),
    case("fit_fixed_not_numeric", lambda c: c.fit(fixed={"vsini_1": "fast"}), ValueError,
         "fixed values must be numbers"),
    case("fit_shared_unknown_label", lambda c: c.fit(shared=("alpha",)), ValueError,
         r"shared labels \['alpha'\]"),
    case("fit_unknown_option", lambda c: c.fit(rv_rnge=100.0), TypeError, "rv_rnge"),
    case("fit_rv_range_negative", lambda c: c.fit(rv_range=-100.0), ValueError, "0 < rv_step < rv_range"),
    case("fit_rv_step_above_range", lambda c: c.fit(rv_step=200.0), ValueError, "0 < rv_step < rv_range"),
    case("fit_rv_range_nan", lambda c: c.fit(rv_range=np.nan), ValueError, "rv_range nan"),
    case("fit_n_starts_zero", lambda c: c.fit(n_starts=0), ValueError, "n_starts must be >= 1"),
    case("fit_flux_ratio_mode_unknown", lambda c: c.fit(flux_ratio_mode="magic"), ValueError,
         "flux_ratio_mode must be one of"),
    case("batch_chunk_size_zero", lambda c: c.batch(c.flux[None], chunk_size=0), ValueError,
         "chunk_size must be >= 1"),
    case("batch_devices_unknown", lambda c: c.batch(c.flux[None], devices="gpus"), ValueError,
         "devices must be"),
    # ---- spectral models: label counts, labels outside the box, corrupt files
    case("binspec_wrong_label_count",
         lambda c: Emulator.from_binspec(_binspec_npz(), ("teff", "logg"),
                                         np.linspace(15100.0, 16900.0, 7214)),
         ValueError, r"takes 5 labels .* but 2 label_names"),
    case("payne_wrong_label_count",
         lambda c: Emulator.from_payne(c.payne_npz()[0], ("teff", "logg"), c.payne_npz()[1]), ValueError,
         r"takes 3 labels .* but 2 label_names"),
    case("payne_wrong_pixel_count",
         lambda c: Emulator.from_payne(c.payne_npz()[0], ("teff", "logg", "feh"), c.payne_npz()[1][:-1]),
         ValueError, "6 output pixels but wave has 5"),
    case("emulator_label_outside_box_raise_policy",
         lambda c: c.emulator(range_policy="raise").flux(np.array([0.5, 1.5, 0.5])), ValueError,
         r"label 'b' = 1.5 lies outside its bounds \[0, 1\]"),
    case("emulator_label_nan", lambda c: c.emulator().flux(np.array([0.5, np.nan, 0.5])), ValueError,
         "label 'b' is not finite"),
    case("emulator_wrong_label_count_in_flux", lambda c: c.emulator().flux(np.ones(2)), ValueError,
         "labels must have 3 entries"),
    case("emulator_load_random_bytes",
         lambda c: Emulator.load(_write(c.dir("em") / "em.h5", np.random.default_rng(2).bytes(4000))),
         ValueError, "not a readable HDF5 file"),
    case("emulator_load_truncated", lambda c: Emulator.load(_truncate(_saved_emulator(c))), ValueError,
         "not a readable HDF5 file.*truncated"),
    case("emulator_load_a_stack_file",
         lambda c: Emulator.load(c.stack(c.dir("em") / "s.h5", c.flux[None], c.err[None])), ValueError,
         "format tag is 'jaxspec-stack', not 'jaxspec-emulator'"),
    case("emulator_load_missing", lambda c: Emulator.load(c.tmp / "no_such_model.h5"), FileNotFoundError,
         "no such emulator file"),
    # ---- readers: corrupt, truncated, wrong layout, missing
    case("read_random_bytes", lambda c: read_spectrum(_write(c.dir("r") / "x.fits", b"\x17" * 3000)),
         SpectrumFormatError, "x.fits: cannot read .*not appear to be a valid FITS file"),
    case("read_empty_file", lambda c: read_spectrum(_write(c.dir("r") / "x.fits", b"")), SpectrumFormatError,
         "Empty or corrupt FITS file"),
    case("read_truncated_real_file", lambda c: read_spectrum(_truncate(_copy_real(c, "trunc_real"))),
         SpectrumFormatError, "may have been truncated"),
    case("read_truncated_real_file_mid_header",
         lambda c: read_spectrum(_truncate(_copy_real(c, "trunc_hdr"), keep=0.005)), SpectrumFormatError,
         "Empty or corrupt FITS file"),
    case("read_truncated_written_boss_table",
         lambda c: read_spectrum(_truncate(_written(c, write_boss, "spec.fits"), keep=0.6)),
         SpectrumFormatError, "spec.fits: cannot read .*truncated"),
    case("read_empty_primary_no_table", lambda c: read_spectrum(_empty_primary(c)), SpectrumFormatError,
         r"unrecognised spectrum layout \(HDUs: \[\('PRIMARY', 'PrimaryHDU', None\)\]\)"),
    case("read_table_without_flux_column", lambda c: read_spectrum(_no_flux_table(c), format="fits_table"),
         SpectrumFormatError, r"no flux column .*columns: \['WAVE', 'ERR'\]"),
    case("read_table_without_flux_column_detected", lambda c: read_spectrum(_no_flux_table(c)),
         SpectrumFormatError, "unrecognised spectrum layout"),
    case("read_image_without_wavelength_solution",
         lambda c: read_spectrum(_no_wcs_image(c), format="fits_image"), SpectrumFormatError,
         "no wavelength solution"),
    case("read_real_aspcapstar_as_apstar",
         lambda c: read_spectrum(survey_file(REAL_FILE), format="apstar"), SpectrumFormatError,
         "HDU 3 must be an integer bitmask.*not an apStar layout"),
    case("read_written_apstar_as_aspcapstar",
         lambda c: read_spectrum(_written(c, write_apstar, "apStar-x.fits"), format="aspcapstar"),
         SpectrumFormatError, r"HDU 1 must be a 1-D spectrum, got shape \(5, 8575\)"),
    case("read_3d_image_as_image", lambda c: read_spectrum(_cube(c), format="fits_image"),
         SpectrumFormatError, "no 1-D image HDU"),
    case("read_nonexistent_path", lambda c: read_spectrum(c.tmp / "nothere.fits"), SpectrumFormatError,
         "nothere.fits: no such file"),
    case("read_directory", lambda c: read_spectrum(c.dir("a_dir")), SpectrumFormatError, "is a directory"),
    case("read_unknown_format_name", lambda c: read_spectrum(c.tmp / "x.fits", format="votable"), ValueError,
         "unknown format 'votable'"),
    case("read_npz_shape_mismatch", lambda c: read_spectrum(_npz(c, flux=c.flux[:-4])), SpectrumFormatError,
         "invalid npz spectrum: flux has shape"),
    case("read_hdf5_stack_as_spectrum",
         lambda c: read_spectrum(c.stack(c.dir("h5") / "s.h5", c.flux[None], c.err[None])),
         SpectrumFormatError, "not appear to be a valid FITS file"),
    # ---- the HDF5 stack
    case("stack_read_hdf5_not_a_stack", lambda c: read_stack(_plain_h5(c)), ValueError,
         "not a jaxspec stack"),
    case("stack_read_truncated", lambda c: read_stack(_truncate(_small_stack(c))), ValueError,
         "not a readable HDF5 file.*truncated"),
    case("stack_info_random_bytes",
         lambda c: stack_info(_write(c.dir("h5") / "s.h5", b"\x89HDF\r\n\x1a\n" * 9)), ValueError,
         "not a readable HDF5 file"),
    case("stack_rows_out_of_range", lambda c: read_stack(_small_stack(c), 2, 9), ValueError,
         "rows 2:9 are outside the stack's 4 spectra"),
    case("stack_write_unsorted_wave", lambda c: write_stack(c.tmp / "w.h5", c.flux[None], WAVE[::-1],
                                                            err=c.err[None]),
         ValueError, "not strictly increasing"),
    case("stack_write_err_and_ivar",
         lambda c: write_stack(c.tmp / "w.h5", c.flux[None], WAVE, err=c.err[None], ivar=c.err[None]),
         ValueError, "exactly one of ivar or err"),
    case("stack_write_wrong_id_count", lambda c: write_stack(c.tmp / "w.h5", np.stack([c.flux] * 2), WAVE,
                                                             err=np.stack([c.err] * 2), ids=["a"]),
         ValueError, r"ids must have one entry per spectrum \(2\)"),
    # ---- survey runs
    case("survey_corrupt_and_truncated_files_flagged", _survey_corrupt_file_flagged),
    case("survey_stack_nan_and_negative_err_rows_flagged", _survey_stack_bad_rows_flagged),
    case("survey_stack_corrupt_hdf5_row_flagged", _survey_stack_corrupt_row_flagged),
    case("survey_interrupted_keeps_finished_chunk_and_flags_bad_row", _survey_interrupted_keeps_chunks,
         needs_monkeypatch=True),
    case("survey_truncated_stack_refused_at_start",
         lambda c: run_survey(_truncate(_small_stack(c)), c.dir("sv") / "t.fits", model=c.model), ValueError,
         "not a readable HDF5 file"),
    case("survey_hdf5_not_a_stack", lambda c: run_survey(_plain_h5(c), c.dir("sv") / "t.fits", model=c.model),
         ValueError, "not a jaxspec stack"),
    case("survey_unknown_fixed_parameter_refused_before_fitting",
         lambda c: run_survey(_small_stack(c), c.dir("sv") / "t.fits", model=c.model, fixed={"teff_3": 1.0}),
         ValueError, r"unknown parameters \['teff_3'\]"),
    case("survey_bad_option_refused_before_fitting",
         lambda c: run_survey(_small_stack(c), c.dir("sv") / "t.fits", model=c.model, rv_range=-5.0),
         ValueError, "0 < rv_step < rv_range"),
    case("survey_unknown_flux_ratio_mode_refused_before_fitting",
         lambda c: run_survey(_small_stack(c), c.dir("sv") / "t.fits", model=c.model, flux_ratio_mode="bb"),
         ValueError, "flux_ratio_mode must be one of"),
    case("survey_missing_input", lambda c: run_survey(c.tmp / "nothing.h5", c.dir("sv") / "t.fits"),
         ValueError, "does not exist"),
    # ---- the command line
    case("cli_fit_resolution_not_numeric",
         lambda c: _cli_error(["fit", "x.fits", "--resolution", "high"], "--resolution", "invalid float")),
    case("cli_fit_rv_range_not_numeric",
         lambda c: _cli_error(["fit", "x.fits", "--rv-range", "wide"], "--rv-range", "invalid float")),
    case("cli_fit_continuum_degree_not_integer",
         lambda c: _cli_error(["fit", "x.fits", "--continuum-degree", "1.5"], "--continuum-degree",
                              "invalid int")),
    case("cli_fit_fixed_value_not_numeric",
         lambda c: _cli_error(["fit", "x.fits", "--fixed", "vsini_1=abc"], "--fixed 'vsini_1=abc'",
                              "must be a number")),
    case("cli_fit_fixed_without_value",
         lambda c: _cli_error(["fit", "x.fits", "--fixed", "vsini_1"], "--fixed takes NAME=VALUE")),
    case("cli_fit_missing_input_file_flagged", _cli_fit_missing_file_flagged),
    case("cli_fit_corrupt_model_file",
         lambda c: _cli_error(["fit", "x.fits", "--model", _write(c.dir("cli") / "em.h5", b"\0" * 500)],
                              "jaxspec fit: error:", "em.h5: not a readable HDF5 file")),
    case("cli_survey_missing_model_file",
         lambda c: _cli_error(["survey", _small_stack(c), "--out", c.dir("cli") / "o.fits", "--model",
                               c.tmp / "none.h5"], "no such emulator file")),
    case("cli_survey_chunk_size_not_numeric",
         lambda c: _cli_error(["survey", "in.h5", "--out", "o.fits", "--chunk-size", "many"], "--chunk-size",
                              "invalid int")),
    case("cli_survey_workers_not_numeric",
         lambda c: _cli_error(["survey", "in.h5", "--out", "o.fits", "--workers", "two"], "--workers")),
    case("cli_survey_missing_input",
         lambda c: _cli_error(["survey", c.tmp / "none.h5", "--out", c.tmp / "o.fits"],
                              "jaxspec survey: error:", "does not exist")),
    case("cli_survey_chunk_size_zero",
         lambda c: _cli_error(["survey", _small_stack(c), "--out", c.tmp / "o.fits", "--chunk-size", "0"],
                              "chunk_size must be >= 1")),
    case("cli_survey_fixed_unknown_parameter",
         lambda c: _cli_error(["survey", _small_stack(c), "--out", c.dir("cli") / "o.fits", "--fixed",
                               "teff_3=5000"], "unknown parameters")),
    case("cli_pack_missing_input",
         lambda c: _cli_error(["pack", c.tmp / "none.fits", "--out", c.tmp / "p.h5"], "jaxspec pack: error:",
                              "none.fits: no such file")),
    case("cli_pack_corrupt_input",
         lambda c: _cli_error(["pack", _write(c.dir("cli") / "bad.fits", b"junk" * 900), "--out",
                               c.tmp / "p.h5"], "bad.fits", "valid FITS")),
    case("cli_pack_without_out", lambda c: _cli_error(["pack", "a.fits"], "--out")),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, ctx, monkeypatch):
    args = (ctx, monkeypatch) if case.needs_monkeypatch else (ctx,)
    if case.raises is None:
        case.run(*args)  # the case checks its flagged / finite result itself
    else:
        with pytest.raises(case.raises, match=case.match):
            case.run(*args)


def test_catalogue_is_large_and_distinct():
    ids = [p.id for p in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)
