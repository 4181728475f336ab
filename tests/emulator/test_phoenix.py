"""PHOENIX HiRes loader: file names, headers, continuum normalization and the HDF5 grid."""

import numpy as np
import pytest

from jaxspec.emulator.phoenix import continuum_normalize, load_phoenix_grid, parse_phoenix_name
from jaxspec.emulator.train import read_grid

fits = pytest.importorskip("astropy.io.fits")
pytest.importorskip("h5py")

SUFFIX = ".PHOENIX-ACES-AGSS-COND-2011-HiRes.fits"
WAVE_NAME = "WAVE_PHOENIX-ACES-AGSS-COND-2011.fits"
# Line centres [A] and widths [A]; the depth of line j for a model is DEPTHS[j] * scale(model).
LINES = np.array([4931.0, 4958.0, 4990.0, 5021.0, 5047.0, 5083.0, 5118.0, 5160.0, 5201.0, 5249.0, 5302.0])
SIGMA = 0.35
DEPTHS = np.array([0.30, 0.55, 0.20, 0.70, 0.45, 0.60, 0.35, 0.80, 0.25, 0.50, 0.65])
# (file label part, header labels (teff, logg, feh, alpha), line-depth scale)
MODELS = [
    ("lte05800-4.50-0.0", (5800.0, 4.50, 0.0, 0.0), 1.0),
    ("lte04300-1.00+0.5", (4300.0, 1.002, 0.5, 0.0), 1.1),  # header logg differs by rounding
    ("lte05000-4.00-1.0.Alpha=+0.40", (5000.0, 4.00, -1.0, 0.4), 0.7),
    ("lte06500-3.50-2.0", (6500.0, 3.50, -2.0, 0.0), 0.5),
]


def phoenix_wave():
    """~3000 vacuum wavelengths with PHOENIX-like piecewise-constant steps."""
    return np.concatenate([np.arange(4900.0, 5000.0, 0.25), np.arange(5000.0, 5400.0, 0.15)])


def planck_flam(wave, teff):
    lam = wave * 1e-8
    return 2 * 6.626e-27 * 2.998e10**2 / lam**5 / np.expm1(1.4388 / (lam * teff))


def line_profile(wave, scale):
    g = np.exp(-0.5 * ((wave[:, None] - LINES) / SIGMA) ** 2)
    return 1.0 - (g * DEPTHS * scale).sum(-1)


def write_model(directory, stem, header_labels, scale, wave, *, keys=True, flux=None):
    teff = header_labels[0]
    if flux is None:
        flux = np.pi * planck_flam(wave, teff) * line_profile(wave, scale)
    hdu = fits.PrimaryHDU(np.asarray(flux, dtype=np.float32))
    if keys:
        for key, value in zip(("PHXTEFF", "PHXLOGG", "PHXM_H", "PHXALPHA"), header_labels, strict=True):
            hdu.header[key] = value
    path = directory / (stem + SUFFIX)
    hdu.writeto(path)
    return path


def write_wave(directory, wave, unit="Angstrom"):
    hdu = fits.PrimaryHDU(np.asarray(wave, dtype=np.float64))
    hdu.header["UNIT"] = unit
    hdu.writeto(directory / WAVE_NAME)


@pytest.fixture
def library(tmp_path):
    wave = phoenix_wave()
    write_wave(tmp_path, wave)
    for stem, lab, scale in MODELS:
        write_model(tmp_path, stem, lab, scale, wave)
    return tmp_path


def test_parse_phoenix_name():
    assert parse_phoenix_name("lte05800-4.50-0.0" + SUFFIX) == dict(
        teff=5800.0, logg=4.5, feh=0.0, alpha_fe=0.0
    )
    assert parse_phoenix_name("/data/Z+0.5/lte04300-1.00+0.5" + SUFFIX) == dict(
        teff=4300.0, logg=1.0, feh=0.5, alpha_fe=0.0
    )
    lab = parse_phoenix_name("lte05000-4.00-1.0.Alpha=+0.40" + SUFFIX)
    assert lab == dict(teff=5000.0, logg=4.0, feh=-1.0, alpha_fe=0.4)
    lab = parse_phoenix_name("lte12000-0.00-0.0.Alpha=-0.20" + SUFFIX)
    assert lab == dict(teff=12000.0, logg=0.0, feh=0.0, alpha_fe=-0.2)
    assert np.copysign(1.0, lab["logg"]) == 1.0 and np.copysign(1.0, lab["feh"]) == 1.0
    for bad in ("WAVE_PHOENIX-ACES-AGSS-COND-2011.fits", "lte05800_4.50_0.0.fits", "lte5800" + SUFFIX):
        with pytest.raises(ValueError, match="not a PHOENIX model file name"):
            parse_phoenix_name(bad)


def test_continuum_normalize_recovers_continuum_and_depths():
    wave = phoenix_wave()
    truth = line_profile(wave, 1.0)
    flux = np.pi * planck_flam(wave, 4500.0) * truth
    norm, cont = continuum_normalize(wave, flux, return_continuum=True)
    free = truth > 1 - 1e-4
    assert np.max(np.abs(norm[free] - 1)) < 0.01
    assert np.max(np.abs(norm - truth)) < 0.01
    # 2-D input gives the same answer row by row.
    np.testing.assert_allclose(continuum_normalize(wave, np.stack([flux, 2 * flux]))[1], norm, rtol=1e-12)
    with pytest.raises(ValueError, match="not finite"):
        continuum_normalize(wave, np.where(wave > 5100, np.nan, flux))
    with pytest.raises(ValueError, match="quantile"):
        continuum_normalize(wave, flux, quantile=0.0)


def test_load_phoenix_grid(library, tmp_path):
    out = tmp_path / "grid.h5"
    labels, flux, wave, names = load_phoenix_grid(
        library, wave_min=4920.0, wave_max=5320.0, label_names=("teff", "logg", "feh", "alpha_fe"), out=out
    )
    assert names == ("teff", "logg", "feh", "alpha_fe")
    assert wave[0] >= 4920.0 and wave[-1] <= 5320.0 and wave.dtype == np.float64
    assert flux.shape == (len(MODELS), wave.size) and np.all(np.isfinite(flux))
    # Sorted file order: lte04300, lte05000, lte05800, lte06500; labels from the headers.
    order = np.argsort([m[0] for m in MODELS])
    np.testing.assert_array_equal(labels, [MODELS[i][1] for i in order])
    assert labels[0, 1] == 1.002  # header value preferred over the name's 1.00

    for row, i in zip(flux, order, strict=True):
        truth = line_profile(wave, MODELS[i][2])
        free = truth > 1 - 1e-4
        assert np.max(np.abs(row[free] - 1)) < 0.01
        inside = (LINES > wave[0]) & (LINES < wave[-1])
        for lam0, depth in zip(LINES[inside], DEPTHS[inside] * MODELS[i][2], strict=True):
            near = np.abs(wave - lam0) < 3 * SIGMA
            measured = 1 - row[near].min()
            expected = 1 - truth[near].min()  # the depth at the sampled pixel nearest the centre
            assert abs(expected - depth) < 0.02 * depth
            assert abs(measured - expected) < 0.02 * expected

    l2, f2, w2, n2 = read_grid(out)
    np.testing.assert_array_equal(l2, labels)
    np.testing.assert_array_equal(f2, flux)
    np.testing.assert_array_equal(w2, wave)
    assert tuple(n2) == names


def test_missing_header_keywords_fall_back_to_the_name(tmp_path):
    wave = phoenix_wave()
    write_wave(tmp_path, wave)
    write_model(tmp_path, "lte05000-4.00-1.0.Alpha=+0.40", (5000.0, 4.0, -1.0, 0.4), 1.0, wave, keys=False)
    labels, *_ = load_phoenix_grid(
        tmp_path, wave_min=5000, wave_max=5100, label_names=("teff", "logg", "feh", "alpha_fe")
    )
    np.testing.assert_array_equal(labels, [[5000.0, 4.0, -1.0, 0.4]])


def test_errors(tmp_path):
    wave = phoenix_wave()
    lib = tmp_path / "lib"
    lib.mkdir()
    kw = dict(wave_min=4950.0, wave_max=5300.0)

    with pytest.raises(ValueError, match="no files matching"):
        load_phoenix_grid(lib, **kw)
    good = write_model(lib, "lte05800-4.50-0.0", (5800.0, 4.5, 0.0, 0.0), 1.0, wave)
    with pytest.raises(ValueError, match="missing wavelength file"):
        load_phoenix_grid(lib, **kw)
    with pytest.raises(ValueError, match="does not exist"):
        load_phoenix_grid(lib, wave_file="nope.fits", **kw)
    write_wave(lib, wave)
    load_phoenix_grid(lib, **kw)  # the good library loads

    with pytest.raises(ValueError, match="no wavelengths in"):
        load_phoenix_grid(lib, wave_min=6000.0, wave_max=6100.0)
    with pytest.raises(ValueError, match="label_names"):
        load_phoenix_grid(lib, label_names=("teff", "vmic"), **kw)

    def bad_one(stem, labs, match, **extra):
        path = write_model(lib, stem, labs, 1.0, wave, **extra)
        with pytest.raises(ValueError, match=match) as err:
            load_phoenix_grid(lib, **kw)
        assert path.name in str(err.value)
        path.unlink()

    bad_one("lte05900-4.50-0.0", (5900.0, 4.5, 0.0, 0.0), "pixels but", flux=np.ones(wave.size - 1))
    flux = np.pi * planck_flam(wave, 5900.0)
    flux[1500] = np.nan
    bad_one("lte05900-4.50-0.0", (5900.0, 4.5, 0.0, 0.0), "non-finite flux", flux=flux)
    bad_one("lte05900-4.50-0.0", (5950.0, 4.5, 0.0, 0.0), "disagree")
    bad_one("lte05900-4.50-0.0", (5900.0, 4.5, 0.3, 0.0), "PHXM_H.*disagree")

    corrupt = lib / ("lte06000-4.50-0.0" + SUFFIX)
    corrupt.write_bytes(b"not a FITS file " * 300)
    with pytest.raises(ValueError, match="not a readable FITS") as err:
        load_phoenix_grid(lib, **kw)
    assert corrupt.name in str(err.value)
    raw = good.read_bytes()
    corrupt.write_bytes(raw[: len(raw) // 2])  # truncated
    with pytest.raises(ValueError, match=corrupt.name), pytest.warns(UserWarning, match="truncated"):
        load_phoenix_grid(lib, **kw)
    corrupt.unlink()

    (lib / WAVE_NAME).unlink()
    write_wave(lib, wave, unit="nm")
    with pytest.raises(ValueError, match="not Angstrom"):
        load_phoenix_grid(lib, **kw)
