"""Generic readers: 1-D FITS image with a wavelength WCS, FITS binary table (incl. SDSS BOSS COADD)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxspec.io.fits import read_fits_image, read_fits_table, read_fits_table_rows
from jaxspec.io.spectrum import SpectrumFormatError
from jaxspec.physics import air_to_vacuum
from tests.io._spectra_files import lines, requires_survey, survey_file, write_boss, write_image


def _check(s, truth, err_key="err"):
    good = np.ones(truth["wave"].size, bool)
    good[truth["bad"]] = False
    np.testing.assert_array_equal(np.flatnonzero(s.ivar == 0), truth["bad"])
    np.testing.assert_allclose(s.flux[good], truth["flux"][good], rtol=1e-6)
    if err_key == "err":
        np.testing.assert_allclose(s.ivar[good], 1.0 / truth["err"][good] ** 2, rtol=1e-5)
    else:
        np.testing.assert_allclose(s.ivar[good], truth["ivar"][good], rtol=1e-6)
    assert np.all(np.isfinite(s.flux)) and np.all(np.diff(s.wave) > 0)


def test_image_linear_wcs_with_error_hdu(tmp_path):
    path = tmp_path / "galah_like.fits"
    truth = write_image(path, crval=4713.7, cdelt=0.046, err_name="input_sigma")
    s = read_fits_image(path)
    np.testing.assert_allclose(s.wave, truth["wave"], rtol=1e-6)
    _check(s, truth)
    assert s.id == "HD 222259A" and s.resolution is None
    assert s.meta["err_hdu"] == "INPUT_SIGMA" and s.meta["air_source"] == "assumed vacuum (header silent)"
    assert s.meta["air_converted"] is False


def test_image_log_linear_crpix_cd(tmp_path):
    path = tmp_path / "loglin.fits"
    truth = write_image(path, ctype="LOG-LINEAR", crval=4.179, cdelt=6e-6, n=3000, crpix=11.0, use_cd=True)
    s = read_fits_image(path)
    expected = 10.0 ** (4.179 + 6e-6 * (np.arange(3000) + 1 - 11.0))
    np.testing.assert_allclose(s.wave, expected, rtol=1e-6)
    np.testing.assert_allclose(s.wave, truth["wave"], rtol=1e-6)


def test_image_wave_log_and_dcflag(tmp_path):
    p1 = tmp_path / "wavelog.fits"
    write_image(p1, ctype="WAVE-LOG", crval=6000.0, cdelt=0.1, n=500)
    s = read_fits_image(p1)
    np.testing.assert_allclose(s.wave, 6000.0 * np.exp(0.1 * np.arange(500) / 6000.0), rtol=1e-9)
    assert s.meta["air_source"] == "header"  # WAVE-LOG is vacuum by the FITS standard
    p2 = tmp_path / "dcflag.fits"
    write_image(p2, ctype="LINEAR", crval=3.5682, cdelt=1e-4, n=300, extra={"DC-FLAG": 1})
    np.testing.assert_allclose(read_fits_image(p2).wave, 10 ** (3.5682 + 1e-4 * np.arange(300)), rtol=1e-9)


@pytest.mark.parametrize("extra", [{"CTYPE1": "AWAV"}, {"VACUUM": False}, {"AIRORVAC": "air"}])
def test_image_air_header_is_converted(tmp_path, extra):
    path = tmp_path / "air.fits"
    write_image(path, crval=6500.0, cdelt=0.02, n=400, extra=extra)
    s = read_fits_image(path)
    air = 6500.0 + 0.02 * np.arange(400)
    np.testing.assert_allclose(s.wave, air_to_vacuum(air), rtol=1e-12)
    assert s.wave[0] - air[0] > 1.5  # about 1.8 A at 6500 A: a conversion that was really applied
    assert s.meta["air_converted"] is True and s.meta["air_source"] == "header"


def test_image_air_argument_only_when_header_silent(tmp_path):
    path = tmp_path / "silent.fits"
    write_image(path, n=100)
    s = read_fits_image(path, air=True)
    np.testing.assert_allclose(s.wave, air_to_vacuum(5000.0 + 0.05 * np.arange(100)), rtol=1e-12)
    assert s.meta["air_source"] == "argument"
    vac = tmp_path / "vac.fits"
    write_image(vac, n=100, extra={"VACUUM": True})
    with pytest.warns(UserWarning, match="header says vacuum"):
        s2 = read_fits_image(vac, air=True)
    assert s2.meta["air_converted"] is False


def test_image_descending_wcs_is_reversed(tmp_path):
    path = tmp_path / "desc.fits"
    truth = write_image(path, crval=5100.0, cdelt=-0.05, n=200)
    s = read_fits_image(path)
    np.testing.assert_allclose(s.wave, np.sort(truth["wave"]), rtol=1e-9)
    np.testing.assert_allclose(s.flux[10:190], lines(s.wave)[10:190], rtol=1e-6)
    assert s.ivar[-1 - 5] == 0 and s.ivar[-1 - 7] == 0  # masked pixels travel with their flux


def test_image_explicit_hdus_and_missing(tmp_path):
    path = tmp_path / "named.fits"
    truth = write_image(path, err_name="NOISE_MAP")
    s = read_fits_image(path, hdu=0, err_hdu="NOISE_MAP", id="given")
    _check(s, truth)
    assert s.id == "given"
    with pytest.raises(SpectrumFormatError, match=r"named\.fits.*no HDU 'IVAR'"):
        read_fits_image(path, ivar_hdu="IVAR")
    no_err = tmp_path / "noerr.fits"
    write_image(no_err, err_name=None)
    assert read_fits_image(no_err).meta["ivar_assumed"] is True


def test_table_boss_layout(tmp_path):
    path = tmp_path / "spec-0000-00000-0000.fits"
    truth = write_boss(path)
    s = read_fits_table(path)
    np.testing.assert_allclose(s.wave, truth["wave"], rtol=1e-6)
    _check(s, truth, err_key="ivar")
    assert s.id == "spec-0000-00000-0000" and s.meta["hdu"] == "COADD"
    assert s.meta["columns"] == "loglam,flux,ivar,and_mask" and s.meta["air_source"] == "header"


def test_table_pixel_rows_aliases_units_and_sorting(tmp_path):
    from astropy.io import fits

    w = np.linspace(600.0, 610.0, 300)  # nm, descending in the file
    f = lines(w * 10.0)
    sig = np.full(300, 0.05)
    cols = [fits.Column("Lambda", "D", unit="nm", array=w[::-1]), fits.Column("FLUXES", "E", array=f[::-1]),
            fits.Column("Error_Flux", "E", array=sig[::-1])]
    path = tmp_path / "pix.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    s = read_fits_table(path, air=True)
    np.testing.assert_allclose(s.wave, air_to_vacuum(w * 10.0), rtol=1e-9)
    np.testing.assert_allclose(s.flux, f, rtol=1e-6)
    np.testing.assert_allclose(s.err, 0.05, rtol=1e-6)
    assert s.meta["air_converted"] is True and s.id == "pix"


def test_table_one_spectrum_per_row(tmp_path):
    from astropy.io import fits

    w = np.linspace(5000.0, 5100.0, 64)
    flux = np.array([lines(w) * (k + 1) for k in range(3)])
    ivar = np.full((3, 64), 25.0)
    ivar[1, 7] = 0.0
    cols = [fits.Column("OBJID", "8A", array=np.array(["a", "b", "c"])),
            fits.Column("WAVE", "64D", array=np.tile(w, (3, 1))),
            fits.Column("FLUX", "64E", array=flux), fits.Column("IVAR", "64E", array=ivar)]
    path = tmp_path / "rows.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    rows = read_fits_table_rows(path)
    assert [r.id for r in rows] == ["a", "b", "c"]
    np.testing.assert_allclose(rows[2].flux, 3 * lines(w), rtol=1e-6)
    assert read_fits_table(path, row=1).ivar[7] == 0 and rows[0].ivar[7] == 25.0
    with pytest.raises(SpectrumFormatError, match="row 5 out of range"):
        read_fits_table(path, row=5)


def test_table_missing_flux_column_names_file(tmp_path):
    from astropy.io import fits

    path = tmp_path / "noflux.fits"
    cols = [fits.Column("wave", "D", array=np.arange(10.0) + 5000),
            fits.Column("counts", "E", array=np.ones(10))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    with pytest.raises(SpectrumFormatError, match=r"noflux\.fits: no flux column"):
        read_fits_table(path)
    with pytest.raises(SpectrumFormatError, match=r"noflux\.fits: no error column 'sig'"):
        read_fits_table(path, flux="counts", err="sig")


@requires_survey
def test_real_sdss_boss_coadd():
    s = read_fits_table(survey_file("sdss/spec-3586-55181-0500.fits"))
    assert s.npix == 4625 and s.meta["hdu"] == "COADD"
    assert s.wave[0] == pytest.approx(3561.23, abs=0.01) and s.wave[-1] == pytest.approx(10327.61, abs=0.01)
    assert s.meta["air_converted"] is False and s.meta["air_source"] == "header"  # VACUUM = T
    assert 0 < np.sum(s.ivar == 0) < 0.2 * s.npix
    # resolving power from WDISP (LSF sigma in 1e-4 dex pixels): BOSS's R ~ 1,500-2,500
    assert s.meta["resolution_source"] == "wdisp" and 1500.0 < s.resolution < 2300.0
    assert s.meta["resolution_min"] < s.resolution < s.meta["resolution_max"]


@requires_survey
def test_real_galah_and_salt_images():
    g = read_fits_image(survey_file("galah/dr3/1704080050012171.fits"))
    assert g.npix == 4096 and g.id == "170408005001217" and g.meta["err_hdu"] == "input_sigma"
    assert g.wave[0] == pytest.approx(4713.733, abs=1e-3) and g.wave[-1] == pytest.approx(4902.193, abs=1e-3)
    s = read_fits_image(survey_file("salt/mbgphR201811160014_u1we.fits"), hdu=32)
    assert s.npix == 4320
    assert s.wave[0] == pytest.approx(8686.179, abs=1e-3) and s.wave[-1] == pytest.approx(8872.041, abs=1e-3)
    assert s.meta["air_source"] == "assumed vacuum (header silent)"  # CTYPE1 'WAVELENGTH' says nothing
