"""read_spectrum / read_spectra: format detection, overrides, npz, and corrupt input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxspec.io.read import FORMATS, detect_format, read_spectra, read_spectrum
from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, from_arrays
from tests.io._spectra_files import (
    requires_survey,
    survey_file,
    write_apstar,
    write_apvisit,
    write_aspcapstar,
    write_boss,
    write_image,
    write_lamost_lrs,
    write_lamost_mrs,
)

# Neutral file names: detection must come from the structure, not the name.
WRITERS = {
    "apstar": write_apstar,
    "aspcapstar": write_aspcapstar,
    "apvisit": write_apvisit,
    "lamost_mrs": write_lamost_mrs,
    "lamost_lrs": write_lamost_lrs,
    "fits_table": write_boss,
    "fits_image": write_image,
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    paths = {}
    for fmt, writer in WRITERS.items():
        paths[fmt] = d / f"file_{fmt}.fits"
        writer(paths[fmt])
    return paths


def test_formats_tuple():
    assert set(FORMATS) == set(WRITERS) | {"npz", "galah_dr3", "galah_dr4"}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_detect_written(written, fmt):
    assert detect_format(written[fmt]) == fmt
    s = read_spectrum(written[fmt])
    assert isinstance(s, Spectrum) and s.meta["format"] == fmt
    json.dumps(s.meta, allow_nan=False)
    assert np.all(np.diff(s.wave) > 0) and np.all(np.isfinite(s.flux)) and np.any(s.ivar == 0)


def test_format_override_and_kwargs(written):
    s = read_spectrum(written["apstar"], format="APSTAR", row=1)
    assert s.meta["row"] == 1
    # the SDSS-like COADD read as a generic table, explicitly
    assert read_spectrum(written["fits_table"], format="fits_table").meta["hdu"] == "COADD"
    with pytest.raises(ValueError, match="unknown format 'galah'"):
        read_spectrum(written["apstar"], format="galah")
    with pytest.raises(ValueError, match="read_spectra"):
        read_spectrum(written["apstar"], visits=True)
    # a wrong override fails with a message naming the file, not an astropy traceback
    with pytest.raises(SpectrumFormatError, match=r"file_fits_image\.fits"):
        read_spectrum(written["fits_image"], format="apvisit")


def test_read_spectra_lists(written):
    assert [s.meta["row"] for s in read_spectra(written["apstar"])] == [2, 3, 4]
    exps = read_spectra(written["lamost_mrs"])
    assert [s.meta["exposure"] for s in exps] == ["84107311", "84107335"]
    assert all(s.meta["arms"] == "BR" for s in exps)
    assert len(read_spectra(written["apvisit"])) == 1
    assert len(read_spectra(written["fits_image"])) == 1


def test_npz_round_trip(tmp_path):
    w = np.linspace(5000.0, 5100.0, 40)
    s = from_arrays(w[::-1], np.linspace(1, 2, 40), err=np.full(40, 0.1), id="npz-star", resolution=50000,
                    meta={"snr": 10.0})
    path = tmp_path / "x.npz"
    s.save_npz(path)
    assert detect_format(path) == "npz"
    r = read_spectrum(path)
    np.testing.assert_array_equal(r.wave, s.wave)
    np.testing.assert_array_equal(r.flux, s.flux)
    np.testing.assert_allclose(r.ivar, s.ivar)
    assert r.id == "npz-star" and r.resolution == 50000.0 and r.meta["snr"] == 10.0
    np.savez(tmp_path / "bad.npz", flux=np.ones(3))
    with pytest.raises(SpectrumFormatError, match=r"bad\.npz: npz spectrum lacks array\(s\) \['wave'\]"):
        read_spectrum(tmp_path / "bad.npz")


def test_truncated_file(written, tmp_path):
    for fmt in ("apstar", "lamost_mrs", "fits_table"):
        raw = written[fmt].read_bytes()
        cut = tmp_path / f"half_{fmt}.fits"
        cut.write_bytes(raw[: len(raw) // 2])
        with pytest.raises(SpectrumFormatError, match=rf"half_{fmt}\.fits"):
            read_spectrum(cut)
        with pytest.raises(SpectrumFormatError, match=rf"half_{fmt}\.fits"):
            read_spectrum(cut, format=fmt)


def test_not_fits_and_missing(tmp_path):
    txt = tmp_path / "notes.fits"
    txt.write_text("this is not a FITS file\n" * 10)
    with pytest.raises(SpectrumFormatError, match=r"notes\.fits: cannot read .*FITS"):
        read_spectrum(txt)
    with pytest.raises(SpectrumFormatError, match=r"notes\.fits"):
        read_spectrum(txt, format="apstar")
    with pytest.raises(SpectrumFormatError, match=r"nothere\.fits: no such file"):
        read_spectrum(tmp_path / "nothere.fits")


def test_unrecognised_layout_and_table_without_flux(tmp_path):
    from astropy.io import fits

    img = tmp_path / "image2d.fits"
    fits.PrimaryHDU(np.ones((20, 20), np.float32)).writeto(img)
    with pytest.raises(SpectrumFormatError, match=r"image2d\.fits: unrecognised spectrum layout"):
        read_spectrum(img)
    tab = tmp_path / "noflux.fits"
    cols = [fits.Column("wave", "D", array=np.arange(5.0) + 5000), fits.Column("sky", "E", array=np.ones(5))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(tab)
    with pytest.raises(SpectrumFormatError, match=r"noflux\.fits: unrecognised"):
        read_spectrum(tab)
    with pytest.raises(SpectrumFormatError, match=r"noflux\.fits: no flux column"):
        read_spectrum(tab, format="fits_table")


REAL = [
    ("apogee/apStar-r6-2M11194647+0820356.fits", "apstar", "2M11194647+0820356", 3),
    ("apogee/apStar-r6-2M03442721+3220288.fits", "apstar", "2M03442721+3220288", 15),
    ("apogee/apStar-r6-2M17334253-1654573.fits", "apstar", "2M17334253-1654573", 2),
    ("apogee/aspcapStar-r6-l30e.2-2M11194647+0820356.fits", "aspcapstar", "2M11194647+0820356", 1),
    ("apogee/aspcapStar-r6-l30e.2-2M17334253-1654573.fits", "aspcapstar", "2M17334253-1654573", 1),
    ("apogee/apVisit-2M11194647+0820356-0.fits", "apvisit", "2M11194647+0820356", 1),
    ("apogee/apVisit-r13-5095-55844-128.fits", "apvisit", "2M01183798+8403419", 1),
    ("apogee/apVisit-r13-9518-57729-104.fits", "apvisit", "2M00242666+5341178", 1),
    ("lamost/med-58408-TD230151N343645T01_sp01-015.fits", "lamost_mrs", "681001015", 7),
    ("lamost/spec-58397-EG014118N254444M01_sp03-031.fits", "lamost_lrs", "677503031", 1),
    ("sdss/spec-3586-55181-0500.fits", "fits_table", "spec-3586-55181-0500", 1),
    ("galah/dr3/1704080050012171.fits", "galah_dr3", "170408005001217", 1),
    ("galah/dr4_iraf6/2101150001010051.fits", "galah_dr4", "210115000101005", 1),
    ("salt/mbgphR201811160014_u1we.fits", "fits_image", None, 33),
]


@requires_survey
@pytest.mark.parametrize(("rel", "fmt", "oid", "n"), REAL, ids=[r[0].split("/")[-1][:24] for r in REAL])
def test_detect_real(rel, fmt, oid, n):
    path = survey_file(rel)
    assert detect_format(path) == fmt
    s = read_spectrum(path)
    assert s.meta["format"] == fmt and (oid is None or s.id == oid)
    json.dumps(s.meta, allow_nan=False)  # meta must be plain JSON (the survey runner stores it)
    if n > 1:
        assert len(read_spectra(path)) == n


@requires_survey
def test_real_galah_night_table_is_not_a_spectrum():
    with pytest.raises(SpectrumFormatError, match=r"210115\.fits: unrecognised spectrum layout"):
        read_spectrum(survey_file("galah/dr4_iraf6/210115.fits"))
