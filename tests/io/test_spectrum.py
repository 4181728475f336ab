"""The Spectrum object, from_arrays and from_specutils."""

from __future__ import annotations

import numpy as np
import pytest

from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, from_arrays, from_specutils
from jaxspec.physics import air_to_vacuum
from tests.io._spectra_files import lines


def _wave(n=50):
    return np.linspace(5000.0, 5010.0, n)


def test_spectrum_valid_and_readonly():
    w = _wave()
    s = Spectrum(wave=w, flux=lines(w), ivar=np.full(50, 4.0), id=123, resolution=20000)
    assert s.wave.dtype == np.float64 and s.npix == len(s) == 50
    assert s.id == "123" and s.resolution == 20000.0
    np.testing.assert_allclose(s.err, 0.5)
    with pytest.raises(ValueError):
        s.flux[0] = 3.0  # arrays are frozen like the dataclass
    d = s.to_dict()
    assert set(d) == {"wave", "flux", "ivar", "id", "resolution", "meta"}
    np.testing.assert_array_equal(d["wave"], w)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"flux": np.ones(49)}, "flux has 49 pixels"),
        ({"ivar": np.ones((50, 1))}, "ivar must be 1-D"),
        ({"wave": _wave()[::-1]}, "not strictly increasing"),
        ({"wave": np.r_[_wave()[:-1], np.nan]}, "wave has 1 non-finite"),
        ({"ivar": -np.ones(50)}, "ivar must be finite and >= 0"),
        ({"flux": np.r_[np.ones(49), np.inf]}, "flux has 1 non-finite"),
        ({"wave": np.array([]), "flux": np.array([]), "ivar": np.array([])}, "no pixels"),
        ({"resolution": -5.0}, "resolution"),
    ],
)
def test_spectrum_validation_names_the_problem(kw, match):
    args = {"wave": _wave(), "flux": np.ones(50), "ivar": np.ones(50), "id": "x", **kw}
    with pytest.raises(ValueError, match=match):
        Spectrum(**args)


def test_err_is_inf_where_masked():
    s = Spectrum(wave=_wave(3), flux=np.ones(3), ivar=np.array([1.0, 0.0, 0.25]), id="a")
    np.testing.assert_array_equal(s.err, [1.0, np.inf, 2.0])
    np.testing.assert_array_equal(s.good, [True, False, True])


def test_from_arrays_sorts_descending_input_and_masks():
    w = _wave(20)
    f = lines(w)
    err = np.full(20, 0.1)
    f_bad = f.copy()
    f_bad[3] = np.nan
    err[5] = 0.0
    err[6] = np.inf
    mask = np.zeros(20, bool)
    mask[9] = True
    s = from_arrays(w[::-1], f_bad[::-1], err=err[::-1], mask=mask[::-1], id="desc")
    np.testing.assert_array_equal(s.wave, w)
    assert np.all(np.isfinite(s.flux)) and s.flux[3] == 0.0
    bad = np.flatnonzero(s.ivar == 0)
    np.testing.assert_array_equal(bad, [3, 5, 6, 9])
    good = s.ivar > 0
    np.testing.assert_allclose(s.ivar[good], 100.0)
    np.testing.assert_allclose(s.flux[good], f[good])
    assert s.id == "desc" and s.meta["air_converted"] is False


def test_from_arrays_ivar_air_and_errors():
    w = _wave()
    s = from_arrays(w, np.ones(50), ivar=np.full(50, 9.0), air=True)
    np.testing.assert_allclose(s.wave, air_to_vacuum(w), rtol=1e-12)
    assert np.all(s.wave > w) and s.meta["air_converted"] is True
    np.testing.assert_allclose(s.err, 1.0 / 3.0)
    unit = from_arrays(w, np.ones(50))
    assert unit.meta["ivar_assumed"] and np.all(unit.ivar == 1.0)
    with pytest.raises(ValueError, match="shape"):
        from_arrays(w, np.ones(49))
    with pytest.raises(ValueError, match="not both"):
        from_arrays(w, np.ones(50), err=np.ones(50), ivar=np.ones(50))
    with pytest.raises(ValueError, match="strictly increasing"):
        from_arrays(np.r_[w, w[-1]], np.ones(51))  # repeated wavelength cannot be sorted away


def test_spectrum_format_error_is_value_error():
    assert issubclass(SpectrumFormatError, ValueError)


@pytest.mark.parametrize("kind", ["std", "var", "ivar"])
def test_from_specutils_round_trip(kind):
    specutils = pytest.importorskip("specutils")
    import astropy.units as u
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    Spec = getattr(specutils, "Spectrum", None) or specutils.Spectrum1D
    w = _wave()
    f = lines(w)
    sigma = np.linspace(0.01, 0.05, 50)
    unc = {"std": StdDevUncertainty(sigma), "var": VarianceUncertainty(sigma**2),
           "ivar": InverseVariance(1 / sigma**2)}[kind]
    mask = np.zeros(50, bool)
    mask[[4, 40]] = True
    # spectral axis in nm, descending: the converter must give Angstrom, increasing
    sp = Spec(spectral_axis=(w[::-1] / 10.0) * u.nm, flux=f[::-1] * u.Jy,
              uncertainty=type(unc)(unc.array[::-1]), mask=mask[::-1], meta={"id": "sun"})
    s = from_specutils(sp)
    np.testing.assert_allclose(s.wave, w, rtol=1e-12)
    np.testing.assert_allclose(s.flux, f, rtol=1e-6)
    good = ~mask
    np.testing.assert_allclose(s.ivar[good], 1 / sigma[good] ** 2, rtol=1e-6)
    np.testing.assert_array_equal(s.ivar[mask], 0.0)
    assert s.id == "sun" and s.meta["format"] == "specutils"
    assert from_specutils(sp, id="other").id == "other"


def test_absurd_errors_are_masked():
    from jaxspec.io.spectrum import clean_pixels

    err = np.full(10, 0.01)
    err[2], err[3] = 1e5, 10.0  # 1e5 x the flux: no information; 10 x: noisy but kept
    f, iv = clean_pixels(np.ones(10), err=err)
    assert iv[2] == 0 and iv[3] == pytest.approx(0.01)
    assert np.count_nonzero(iv == 0) == 1
