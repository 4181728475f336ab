"""LAMOST MRS (med-*.fits) and LRS (spec-*.fits) readers on written real-layout files and real DR7 files."""

from __future__ import annotations

import numpy as np
import pytest

from jaxspec.io.lamost import read_lamost_lrs, read_lamost_mrs
from jaxspec.io.spectrum import SpectrumFormatError
from jaxspec.physics import air_to_vacuum
from tests.io._spectra_files import requires_survey, survey_file, write_lamost_lrs, write_lamost_mrs


@pytest.fixture(scope="module")
def mrs(tmp_path_factory):
    path = tmp_path_factory.mktemp("lamost") / "med-58408-TD230151N343645T01_sp01-015.fits"
    return path, write_lamost_mrs(path)


def _bad(n, idx):
    b = np.zeros(n, bool)
    b[idx] = True
    return b


def test_mrs_both_arms_joined(mrs):
    path, t = mrs
    s = read_lamost_mrs(path)
    b, r = t["B"], t["R"]
    nb = b["wave"].size
    assert s.npix == nb + r["wave"].size and np.all(np.diff(s.wave) > 0)
    np.testing.assert_allclose(s.wave, np.r_[b["wave"], r["wave"]], rtol=1e-6)
    assert s.wave[nb] - s.wave[nb - 1] > 900.0  # the gap between the arms has no pixels
    bad = np.r_[_bad(nb, b["and_bad"]), _bad(r["wave"].size, r["and_bad"])]
    np.testing.assert_array_equal(s.ivar == 0, bad)
    np.testing.assert_allclose(s.flux[~bad], np.r_[b["flux"], r["flux"]][~bad], rtol=1e-6)
    np.testing.assert_allclose(s.ivar[~bad], 1e-2, rtol=1e-6)
    assert s.id == "681001015" and s.resolution == 7500.0
    assert s.meta["snr_b"] == 120.75 and s.meta["snr_r"] == 280.75 and s.meta["snr"] == 280.75
    assert s.meta["arms"] == "BR" and s.meta["exposure"] == "coadd" and s.meta["air_converted"] is False
    assert s.meta["mjd"] == 58407


def test_mrs_single_arm_or_mask_and_exposures(mrs):
    path, t = mrs
    red = read_lamost_mrs(path, arm="red", mask="or")
    np.testing.assert_allclose(red.wave, t["R"]["wave"], rtol=1e-6)
    np.testing.assert_array_equal(np.flatnonzero(red.ivar == 0), t["R"]["or_bad"])
    blue = read_lamost_mrs(path, arm="b")
    assert blue.meta["arms"] == "B" and "snr_r" not in blue.meta
    e1 = read_lamost_mrs(path, exposure=1)
    e1b = read_lamost_mrs(path, exposure="B-84107335")
    assert e1.meta["exposure"] == e1b.meta["exposure"] == "84107335"
    np.testing.assert_array_equal(e1.flux, e1b.flux)
    good = e1.ivar > 0
    np.testing.assert_allclose(e1.flux[good], 3 * np.r_[t["B"]["flux"], t["R"]["flux"]][good], rtol=1e-6)
    assert e1.ivar[91] == 0 and e1.ivar[90] > 0  # exposure 1 has PIXMASK at pixel 91
    with pytest.raises(SpectrumFormatError, match="no exposure '999'"):
        read_lamost_mrs(path, exposure="999")
    with pytest.raises(ValueError, match="arm must be one of"):
        read_lamost_mrs(path, arm="green")


def test_mrs_air_header_converted(tmp_path):
    path = tmp_path / "med-air.fits"
    t = write_lamost_mrs(path, exposures=(), vacuum=False)
    s = read_lamost_mrs(path, arm="b")
    np.testing.assert_allclose(s.wave, air_to_vacuum(t["B"]["wave"]), rtol=1e-12)
    assert s.meta["air_converted"] is True


def test_mrs_missing_coadd(tmp_path):
    from astropy.io import fits

    path = tmp_path / "med-none.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("FLUX", "E", array=np.ones(3))], name="COADD_B")]).writeto(path)
    with pytest.raises(SpectrumFormatError, match=r"med-none\.fits: no HDU 'COADD_R'"):
        read_lamost_mrs(path, arm="r")
    with pytest.raises(SpectrumFormatError, match=r"med-none\.fits: HDU COADD_B has no IVAR column"):
        read_lamost_mrs(path)


def test_lrs_written(tmp_path):
    path = tmp_path / "spec-58397-EG014118N254444M01_sp03-031.fits"
    t = write_lamost_lrs(path)
    s = read_lamost_lrs(path)
    np.testing.assert_allclose(s.wave, t["wave"], rtol=1e-6)
    bad = _bad(3909, t["and_bad"])
    np.testing.assert_array_equal(s.ivar == 0, bad)
    np.testing.assert_allclose(s.flux[~bad], t["flux"][~bad], rtol=1e-6)
    np.testing.assert_allclose(s.ivar[~bad], 1e-4, rtol=1e-6)
    assert s.id == t["id"] and s.resolution == 1800.0 and s.meta["snr"] == 320.95
    assert s.meta["snr_g"] == 153.72 and s.meta["subclass"] == "G3"
    assert read_lamost_lrs(path, mask="or").ivar[200] == 0 and s.ivar[200] > 0


@requires_survey
def test_real_mrs():
    path = survey_file("lamost/med-58408-TD230151N343645T01_sp01-015.fits")
    s = read_lamost_mrs(path)
    assert s.npix == 4101 + 3692 and s.id == "681001015"
    assert s.meta["snr_b"] == pytest.approx(120.75) and s.meta["snr_r"] == pytest.approx(280.75)
    assert s.wave[0] == pytest.approx(4893.95, abs=0.01) and s.wave[-1] == pytest.approx(6850.62, abs=0.01)
    assert s.meta["air_converted"] is False  # VACUUM = T
    assert 0 < np.sum(s.ivar == 0) < 200
    e = read_lamost_mrs(path, exposure=0, arm="r")
    assert e.npix == 4136 and e.meta["snr_r"] == pytest.approx(93.38)  # SNR of HDU R-84107311


@requires_survey
def test_real_lrs():
    s = read_lamost_lrs(survey_file("lamost/spec-58397-EG014118N254444M01_sp03-031.fits"))
    assert s.npix == 3909 and s.id == "677503031" and s.meta["subclass"] == "G3"
    assert s.wave[0] == pytest.approx(3699.99, abs=0.01) and s.wave[-1] == pytest.approx(9099.13, abs=0.01)
    np.testing.assert_allclose(s.wave, 10 ** (3.5682 + 1e-4 * np.arange(3909)), rtol=1e-6)  # row = WCS
    assert np.sum(s.ivar == 0) == 48  # ivar = 0 pixels in the file, masks empty
