"""GALAH readers on the real DR3 and IRAF 6.0 (DR4) per-CCD files: join, detection, errors.

Every test but the first reads the real files through ``survey_file`` and skips without them.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from jaxspec.io import GALAH_RESOLUTION, read_galah
from jaxspec.io.read import FORMATS, detect_format, read_spectra, read_spectrum
from jaxspec.io.spectrum import SpectrumFormatError
from jaxspec.physics import air_to_vacuum
from tests.io._spectra_files import survey_file

DR3 = "galah/dr3/170408005001217{}.fits"
DR4 = "galah/dr4_iraf6/210115000101005{}.fits"
DR4_FAST = "galah/dr4_iraf6/210115000101003{}.fits"
# Nominal air ranges [A] of the four HERMES CCDs (README; each file's WCS moves by ~2.5 A).
CCD_AIR = {1: (4714.0, 4902.0), 2: (5648.0, 5873.0), 3: (6478.0, 6737.0), 4: (7585.0, 7886.0)}


def _segments(wave, gap=5.0):
    """(lo, hi) of the runs of ``wave`` separated by more than ``gap`` Angstrom."""
    cut = np.flatnonzero(np.diff(wave) > gap)
    return list(zip(np.r_[wave[0], wave[cut + 1]], np.r_[wave[cut], wave[-1]], strict=True))


def _header(rel, hdu=0):
    from astropy.io import fits

    return fits.getheader(survey_file(rel), hdu)


def test_formats_registered():
    assert {"galah_dr3", "galah_dr4"} <= set(FORMATS)


@pytest.mark.parametrize(("rel", "fmt"), [(DR3.format(1), "galah_dr3"), (DR3.format(4), "galah_dr3"),
                                          (DR4.format(2), "galah_dr4"), (DR4_FAST.format(3), "galah_dr4")])
def test_detect(rel, fmt):
    assert detect_format(survey_file(rel)) == fmt


@pytest.mark.parametrize("rel", [DR3, DR4, DR4_FAST])
def test_four_ccds_joined(rel):
    path = survey_file(rel.format(2))  # any CCD file gives the whole star
    s = read_galah(path)
    fmt = "galah_dr3" if "dr3" in rel else "galah_dr4"
    assert s.meta["format"] == fmt and s.meta["ccds"] == "1,2,3,4"
    assert s.id == path.stem[:-1] and len(s.id) == 15
    assert s.npix == 4 * 4096 and 0 <= s.meta["n_masked"] == int(np.sum(s.ivar == 0)) < 100
    assert np.all(np.diff(s.wave) > 0) and np.all(np.isfinite(s.flux)) and np.all(s.ivar >= 0)
    segs = _segments(s.wave)
    assert len(segs) == 4
    for k, (lo, hi) in zip(CCD_AIR, segs, strict=True):
        h = _header(rel.format(k))
        air = h["CRVAL1"] + h["CDELT1"] * np.array([0.0, 4095.0])
        np.testing.assert_allclose([lo, hi], air_to_vacuum(air), rtol=0, atol=1e-8)
        assert 1.3 < lo - air[0] < hi - air[1] < 2.2  # vacuum: redder than air by (n - 1) lambda
        alo, ahi = CCD_AIR[k]
        assert alo - 3.0 < lo < alo + 5.0 and ahi - 3.0 < hi < ahi + 5.0
    assert s.meta["air_converted"] is True
    json.dumps(s.meta, allow_nan=False)  # the survey runner stores meta as JSON


def test_air_to_vacuum_from_each_hdus_wcs():
    s = read_galah(survey_file(DR3.format(1)), ccds=1)
    h = _header(DR3.format(1))
    air = h["CRVAL1"] + h["CDELT1"] * np.array([0.0, 2000.0, 4095.0])
    np.testing.assert_allclose(s.wave[[0, 2000, 4095]], air_to_vacuum(air), rtol=0, atol=1e-8)
    assert s.wave[0] - air[0] == pytest.approx(1.32, abs=0.02)  # vacuum = air x n(4714 A)
    n = s.npix
    # the normalised HDU 4 has its own (rest-frame) WCS: it is used, not HDU 0's
    sn = read_galah(survey_file(DR3.format(1)), ccds=1, normalized=True)
    h4 = _header(DR3.format(1), 4)
    assert h4["CRVAL1"] != h["CRVAL1"]
    air4 = h4["CRVAL1"] + h4["CDELT1"] * np.array([0.0, n - 1])
    np.testing.assert_allclose(sn.wave[[0, n - 1]], air_to_vacuum(air4), rtol=0, atol=1e-8)
    assert sn.meta["frame"] == "rest" and sn.meta["rest_frame_shift_kms"] == pytest.approx(3.06, abs=0.01)


def test_dr3_flux_errors_and_nominal_resolution():
    s = read_galah(survey_file(DR3.format(3)))
    assert s.resolution == GALAH_RESOLUTION == 28000.0
    assert s.meta["resolution_source"].startswith("nominal")
    assert s.meta["mjd"] == pytest.approx(57851.6633, abs=1e-4)
    assert s.meta["baryeff"] == pytest.approx(19.39485)
    assert s.meta["object"] == "170408005001217" and s.meta["origin"] == "GALAH DR3"
    assert s.meta["flux_unit"] == "counts" and s.meta["frame"] is None
    # HDU 1 'input_sigma' is sigma / flux: the per-pixel S/N is 1 / input_sigma
    from astropy.io import fits

    rel = fits.getdata(survey_file(DR3.format(1)), 1).astype(np.float64)
    snr = s.flux[:4096] * np.sqrt(s.ivar[:4096])
    np.testing.assert_allclose(snr, 1.0 / rel, rtol=1e-5)


def test_dr3_normalized_median_near_one():
    s = read_galah(survey_file(DR3.format(1)), normalized=True)
    assert s.meta["normalized"] is True and s.meta["hdu"] == "normalised spectra"
    assert s.npix == 4 * 4096 and len(_segments(s.wave)) == 4
    assert abs(np.median(s.flux[s.ivar > 0]) - 1.0) < 0.1
    # same relative error as the flux read: ivar scales as 1 / flux^2
    raw = read_galah(survey_file(DR3.format(1)))
    np.testing.assert_allclose(s.flux * np.sqrt(s.ivar), raw.flux * np.sqrt(raw.ivar), rtol=1e-5)


def test_dr4_resolution_profile_and_meta():
    s = read_galah(survey_file(DR4.format(1)))
    assert 20000.0 < s.resolution < 35000.0
    assert s.meta["resolution_min"] < s.resolution < s.meta["resolution_max"]
    assert 15000.0 < s.meta["resolution_min"] and s.meta["resolution_max"] < 40000.0
    assert s.meta["resolution_source"].startswith("resolution_profile")
    # the profile is the FWHM in Angstrom (BUNIT 'angstroms'): CCD 1 alone, R = lambda / FWHM
    from astropy.io import fits

    fwhm = fits.getdata(survey_file(DR4.format(1)), "resolution_profile").astype(np.float64)
    h = _header(DR4.format(1))
    air = h["CRVAL1"] + h["CD1_1"] * np.arange(fwhm.size)
    one = read_galah(survey_file(DR4.format(1)), ccds=1)
    assert one.resolution == pytest.approx(np.median(air / fwhm), rel=1e-9)
    assert s.meta["frame"] == "barycentric" and s.meta["baryeff"] == pytest.approx(-13.347, abs=1e-3)
    assert s.meta["snr_ccd1"] == pytest.approx(16.4265, abs=1e-3) and s.meta["snr"] == s.meta["snr_ccd4"]
    assert s.meta["object"] == "gaiadr2_3335061866491047040" and s.meta["twomass_id"] == "05510181+0755193"
    assert s.meta["mjd"] == pytest.approx(59229.4797, abs=1e-4) and s.meta["pipe_ver"] == "6.0"


def test_dr4_relative_error_and_masked_telluric_pixels():
    s = read_galah(survey_file(DR4_FAST.format(4)), ccds=4)
    # relative_error is sigma / flux (not a variance): its median is 1 / the header SNR
    snr = s.flux * np.sqrt(s.ivar)
    assert np.median(snr[s.ivar > 0]) == pytest.approx(1.0 / 0.0211, rel=0.02)
    assert s.meta["snr"] == pytest.approx(47.30, abs=0.01)
    # the O2 A band (~7594-7621 A air): negative flux with zero / negative relative error -> masked
    bad = s.ivar == 0
    assert 20 < bad.sum() < 60 and np.all(s.wave[bad] < 7640.0)
    n = read_galah(survey_file(DR4_FAST.format(4)), ccds=4, normalized=True)
    assert n.meta["hdu"] == "normalized" and abs(np.median(n.flux[n.ivar > 0]) - 1.0) < 0.1
    np.testing.assert_array_equal(n.wave, s.wave)  # DR4: one WCS for every HDU


def test_ccd_subsets_and_stem():
    p = survey_file(DR4.format(1))
    s13 = read_galah(p, ccds=(3, 1))
    assert s13.meta["ccds"] == "1,3" and s13.npix == 2 * 4096 and len(_segments(s13.wave)) == 2
    s2 = read_galah(p, ccds=2)
    assert s2.meta["ccds"] == "2" and 5650.0 < s2.wave[0] < s2.wave[-1] < 5876.0
    stem = p.parent / p.stem[:-1]  # the star stem, without the CCD digit and .fits
    np.testing.assert_array_equal(read_galah(stem).flux, read_galah(p).flux)
    assert read_galah(stem, id="my-star").id == "my-star"
    with pytest.raises(ValueError, match="CCD numbers 1-4"):
        read_galah(p, ccds=(1, 5))
    with pytest.raises(ValueError, match="ccds must be"):
        read_galah(p, ccds="blue")


def _link(src, dst):
    try:
        dst.symlink_to(src)
    except OSError:
        shutil.copyfile(src, dst)


def test_missing_ccd(tmp_path):
    for k in (1, 2):
        src = survey_file(DR3.format(k))
        _link(src, tmp_path / src.name)
    s = read_galah(tmp_path / "1704080050012171.fits")
    assert s.meta["ccds"] == "1,2" and len(_segments(s.wave)) == 2
    with pytest.raises(SpectrumFormatError, match=r"CCD 3 \(1704080050012173\.fits\) not found"):
        read_galah(tmp_path / "1704080050012172.fits", ccds=(1, 3))
    with pytest.raises(SpectrumFormatError, match=r"1704080050012174\.fits: no such file"):
        read_galah(tmp_path / "1704080050012174.fits")
    with pytest.raises(SpectrumFormatError, match="no GALAH CCD files"):
        read_galah(tmp_path / "999999999999999")


def test_truncated_copy(tmp_path):
    raw = survey_file(DR4.format(3)).read_bytes()
    cut = tmp_path / "2101150001010053.fits"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SpectrumFormatError, match=r"2101150001010053\.fits"):
        read_galah(cut)
    with pytest.raises(SpectrumFormatError, match=r"2101150001010053\.fits"):
        read_spectrum(cut)
    # cut at an HDU boundary: astropy opens it without a warning, the reader still refuses it
    cut.write_bytes(raw[:365760])  # HDUs 0-6, resolution_profile lost
    with pytest.raises(SpectrumFormatError, match=r"53\.fits: incomplete galah_dr4 file \(truncated"):
        read_galah(cut)
    junk = tmp_path / "2101150001010051.fits"
    junk.write_bytes(b"not a FITS file\n" * 200)
    with pytest.raises(SpectrumFormatError, match=r"2101150001010051\.fits: cannot read"):
        read_galah(junk, ccds=1)


def test_dr4_without_normalised_hdu(tmp_path):
    from astropy.io import fits

    with fits.open(survey_file(DR4.format(2))) as hdul:
        del hdul["normalized"]
        hdul.writeto(tmp_path / "2101150001010052.fits")
    path = tmp_path / "2101150001010052.fits"
    assert detect_format(path) == "galah_dr4"
    assert read_galah(path).meta["ccds"] == "2"
    with pytest.raises(SpectrumFormatError, match=r"2101150001010052\.fits: .*no normalised-flux HDU"):
        read_galah(path, normalized=True)


def test_night_table_is_not_a_spectrum():
    path = survey_file("galah/dr4_iraf6/210115.fits")
    with pytest.raises(SpectrumFormatError, match=r"210115\.fits: unrecognised spectrum layout"):
        detect_format(path)
    with pytest.raises(SpectrumFormatError, match=r"210115\.fits: not a GALAH .*night / summary table"):
        read_galah(path)
    with pytest.raises(SpectrumFormatError, match=r"210115\.fits: not a GALAH"):
        read_spectrum(path, format="galah_dr4")


def test_read_spectrum_and_spectra_entry_points():
    path = survey_file(DR3.format(2))
    s = read_spectrum(path)
    assert s.meta["format"] == "galah_dr3" and s.meta["ccds"] == "1,2,3,4"
    many = read_spectra(survey_file(DR4.format(4)))
    assert len(many) == 1 and many[0].meta["format"] == "galah_dr4" and many[0].npix == 4 * 4096
    assert read_spectrum(path, normalized=True, ccds=1).meta["normalized"] is True
    # a wrong release override names the file
    with pytest.raises(SpectrumFormatError, match=r"0012172\.fits: is a galah_dr3 file, not galah_dr4"):
        read_spectrum(path, format="galah_dr4", ccds=2)
