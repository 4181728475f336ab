"""APOGEE readers on files written in the real layouts and on the real DR13 files."""

from __future__ import annotations

import numpy as np
import pytest

from jaxspec.io.apogee import APOGEE_BAD_PIXMASK, read_apstar, read_apvisit, read_aspcapstar
from jaxspec.io.spectrum import SpectrumFormatError
from tests.io._spectra_files import (
    requires_survey,
    survey_file,
    write_apstar,
    write_apvisit,
    write_aspcapstar,
)


@pytest.fixture(scope="module")
def apstar(tmp_path_factory):
    path = tmp_path_factory.mktemp("apogee") / "apStar-r6-2M00000000+0000000.fits"
    return path, write_apstar(path, nvisits=3)


def test_default_mask_is_pipeline_bad_bits():
    # bits 0-7 and 14 (apogeereduce getmaskvals.pro badflag); 12/13 (sky line, telluric) are warnings
    assert APOGEE_BAD_PIXMASK == 0b0100_0000_1111_1111 == 16639


def test_apstar_written_row0(apstar):
    path, t = apstar
    s = read_apstar(path)
    np.testing.assert_allclose(s.wave, t["wave"], rtol=1e-6)
    assert s.wave[0] == pytest.approx(15100.80, abs=0.01) and s.wave[-1] == pytest.approx(16999.81, abs=0.01)
    assert s.id == t["id"] and s.resolution == 22500.0 and s.npix == 8575
    bad = np.zeros(8575, bool)
    bad[t["gap"]] = True
    bad[t["bad"]] = True
    np.testing.assert_array_equal(s.ivar == 0, bad)
    good = ~bad
    np.testing.assert_allclose(s.flux[good], t["flux"][0][good], rtol=1e-6)
    np.testing.assert_allclose(s.ivar[good], 1 / t["err"][0][good] ** 2, rtol=1e-5)
    assert s.flux[400] == 0.0 and np.all(np.isfinite(s.flux))
    assert s.meta["snr"] == 58.0 and s.meta["nvisits"] == 3 and s.meta["vhelio"] == -42.4
    assert s.meta["kind"] == "combined, pixel-weighted" and s.meta["air_converted"] is False


def test_apstar_rows_visits_and_mask_bits(apstar):
    path, t = apstar
    s1 = read_apstar(path, row=1)
    np.testing.assert_allclose(s1.flux[:50], t["flux"][1][:50], rtol=1e-6)  # continuum 200: row 1, not 0
    visits = read_apstar(path, visits=True)
    assert len(visits) == 3 and [v.meta["row"] for v in visits] == [2, 3, 4]
    assert [v.meta["mjd"] for v in visits] == [56674, 56675, 56676]
    assert [v.meta["snr"] for v in visits] == [31.0, 32.0, 33.0]
    assert visits[2].meta["vhelio"] == -45.0
    np.testing.assert_allclose(visits[1].flux[:50], t["flux"][3][:50], rtol=1e-6)
    strict = read_apstar(path, mask_bits=["BADPIX", "CRPIX", "SIG_SKYLINE"])
    assert strict.ivar[200] == 0 and strict.ivar[300] > 0  # bit 12 now masks, bit 14 no longer does
    assert read_apstar(path, mask_bits=0).ivar[100] > 0
    with pytest.raises(SpectrumFormatError, match="row 9 out of range"):
        read_apstar(path, row=9)
    with pytest.raises(ValueError, match="unknown APOGEE_PIXMASK bit"):
        read_apstar(path, mask_bits=["NOPE"])


def test_apstar_single_visit_1d(tmp_path):
    path = tmp_path / "apStar-one.fits"
    t = write_apstar(path, nvisits=1)
    s = read_apstar(path)
    np.testing.assert_allclose(s.flux[:50], t["flux"][0][:50], rtol=1e-6)
    v = read_apstar(path, visits=True)
    assert len(v) == 1 and v[0].meta["mjd"] == 56674 and v[0].meta["kind"] == "single visit"


def test_aspcapstar_written(tmp_path):
    path = tmp_path / "aspcapStar-r6-l30e.2-x.fits"
    t = write_aspcapstar(path)
    s = read_aspcapstar(path)
    np.testing.assert_allclose(s.wave, t["wave"], rtol=1e-6)
    bad = np.zeros(8575, bool)
    bad[t["gap"]] = True
    bad[t["bad"]] = True
    np.testing.assert_array_equal(s.ivar == 0, bad)
    np.testing.assert_allclose(s.flux[~bad], t["flux"][~bad], rtol=1e-6)
    np.testing.assert_allclose(s.ivar[~bad], 2500.0, rtol=1e-5)
    assert s.id == t["id"] and s.meta["snr"] == 186.5 and s.meta["normalized"] is True
    np.testing.assert_allclose(s.meta["aspcap_param"], t["param"], rtol=1e-6)
    np.testing.assert_allclose(s.meta["aspcap_fparam"], t["param"] + 1, rtol=1e-6)
    assert s.meta["aspcap_teff"] == pytest.approx(3788.4, abs=0.01) and s.meta["aspcapflag"] == 640
    assert all(type(v) is float for v in s.meta["aspcap_param"])


def test_apvisit_written_chips_reordered(tmp_path):
    path = tmp_path / "apVisit-r6-7351-56674-265.fits"
    t = write_apvisit(path)
    s = read_apvisit(path)
    assert s.npix == 3 * 4096 and np.all(np.diff(s.wave) > 0)
    expected_wave = np.concatenate([t["wave"][c][::-1] for c in (2, 1, 0)])  # blue, green, red; increasing
    np.testing.assert_allclose(s.wave, expected_wave, rtol=1e-12)
    expected_flux = np.concatenate([t["flux"][c][::-1] for c in (2, 1, 0)])
    # pixel index of chip c, raw pixel j in the output: blue chip first, each chip reversed
    pos = {c: k * 4096 for k, c in enumerate((2, 1, 0))}
    idx = lambda c, j: pos[c] + 4095 - j  # noqa: E731
    bad = sorted([idx(0, 10), idx(1, 20), idx(2, 30)])
    np.testing.assert_array_equal(np.flatnonzero(s.ivar == 0), bad)
    good = s.ivar > 0
    np.testing.assert_allclose(s.flux[good], expected_flux[good], rtol=1e-6)
    assert s.ivar[idx(2, 4000)] > 0  # SIG_TELLURIC is only a warning
    assert s.flux[idx(2, 0)] == pytest.approx(expected_flux[4095], rel=1e-6)
    assert s.id == "2M11194647+0820356" and s.meta["mjd"] == 56674 and s.meta["frame"] == "observed"
    assert s.meta["bc"] == 23.43


def test_apvisit_wrong_layout(tmp_path):
    from astropy.io import fits

    path = tmp_path / "apVisit-short.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((3, 10)))]).writeto(path)
    with pytest.raises(SpectrumFormatError, match=r"apVisit-short\.fits: apVisit needs at least 5 HDUs"):
        read_apvisit(path)


@requires_survey
@pytest.mark.parametrize(
    ("rel", "oid", "nvisits", "snr"),
    [("apogee/apStar-r6-2M11194647+0820356.fits", "2M11194647+0820356", 3, 58.0554),
     ("apogee/apStar-r6-2M03442721+3220288.fits", "2M03442721+3220288", 15, 113.051),
     ("apogee/apStar-r6-2M17334253-1654573.fits", "2M17334253-1654573", 2, 186.493)],
)
def test_real_apstar(rel, oid, nvisits, snr):
    path = survey_file(rel)
    s = read_apstar(path)
    assert s.npix == 8575 and s.id == oid and s.meta["snr"] == pytest.approx(snr)
    assert s.wave[0] == pytest.approx(15100.80, abs=0.005)
    assert s.wave[-1] == pytest.approx(16999.81, abs=0.005)
    assert s.meta["nvisits"] == nvisits
    n_bad = int(np.sum(s.ivar == 0))
    assert 800 < n_bad < 0.3 * 8575  # chip gaps (about 850 px) plus flagged pixels, not the whole spectrum
    assert np.median(s.flux[s.ivar > 0] * np.sqrt(s.ivar[s.ivar > 0])) > 0.3 * snr
    visits = read_apstar(path, visits=True)
    assert len(visits) == nvisits


@requires_survey
def test_real_apstar_visit_meta():
    visits = read_apstar(survey_file("apogee/apStar-r6-2M11194647+0820356.fits"), visits=True)
    assert [v.meta["mjd"] for v in visits] == [56674, 56706, 56726]
    assert visits[0].meta["vhelio"] == pytest.approx(-42.3216)  # the README's apStar value for MJD 56674


@requires_survey
def test_real_aspcapstar():
    s = read_aspcapstar(survey_file("apogee/aspcapStar-r6-l30e.2-2M17334253-1654573.fits"))
    assert s.npix == 8575 and s.id == "2M17334253-1654573"
    assert s.meta["aspcap_teff"] == pytest.approx(3788.4, abs=0.1)
    assert s.meta["aspcap_logg"] == pytest.approx(1.08, abs=0.01)
    good = s.ivar > 0
    assert 0.5 < np.median(s.flux[good]) < 1.1  # continuum-normalized
    assert np.sum(~good) >= 1000  # zero-filled chip gaps
    m = read_aspcapstar(survey_file("apogee/aspcapStar-r6-l30e.2-2M11194647+0820356.fits"))
    assert m.meta["aspcap_teff"] is None and m.meta["snr"] == pytest.approx(58.0554)  # ASPCAP gave -9999


@requires_survey
@pytest.mark.parametrize(
    ("rel", "oid", "mjd", "blue"),
    [("apogee/apVisit-2M11194647+0820356-0.fits", "2M11194647+0820356", 56674, 15143.32),
     ("apogee/apVisit-r13-5095-55844-128.fits", "2M01183798+8403419", 55844, 15142.69),
     ("apogee/apVisit-r13-9518-57729-104.fits", "2M00242666+5341178", 57729, 15142.26)],
)
def test_real_apvisit(rel, oid, mjd, blue):
    s = read_apvisit(survey_file(rel))
    assert s.npix == 12288 and s.id == oid and s.meta["mjd"] == mjd
    assert s.wave[0] == pytest.approx(blue, abs=0.01) and 16954.3 < s.wave[-1] < 16954.8
    assert np.all(np.diff(s.wave) > 0)
    assert np.sum(s.ivar == 0) < 0.05 * s.npix
