"""Instrument presets: resolution and continuum degree from a preset, contradictions are errors."""

import numpy as np
import pytest

from jaxspec.instruments import INSTRUMENTS, check_instrument, detect_instrument
from tests.io._spectra_files import requires_survey, survey_file


def test_presets_and_their_checks():
    for name in ("galah", "lamost-mrs", "lamost-lrs", "sdss", "harps"):
        inst = INSTRUMENTS[name]
        assert inst.resolution > 1000 and inst.reach[0] < inst.reach[1]
    assert INSTRUMENTS["apogee"].resolution is None  # the APOGEE models hold the LSF
    wave = np.linspace(4720.0, 7880.0, 100)
    assert check_instrument("galah", wave).resolution == 28000.0
    with pytest.raises(ValueError, match="unknown instrument 'hermes'.*galah"):
        check_instrument("hermes", wave)
    with pytest.raises(ValueError, match="contradicts the spectrum.*4700-7900 A.*3700-9000 A"):
        check_instrument("galah", np.linspace(3700.0, 9000.0, 10))
    with pytest.raises(ValueError, match="contradicts the file.*'lamost-lrs'"):
        check_instrument("galah", wave, detected="lamost-lrs")
    assert detect_instrument({"format": "galah_dr4"}) == "galah"
    assert detect_instrument({"format": "fits_table", "resolution_source": "wdisp"}) == "sdss"
    assert detect_instrument({"format": "fits_image"}) is None


def test_fit_binary_instrument_sets_resolution_and_continuum():
    import jaxspec

    em = jaxspec.default_model()
    wave = np.asarray(em.wave)[200:-200]
    flux = np.asarray(em.flux(np.array([5700.0, 4.4, 0.0])))[200:-200]
    with pytest.raises(ValueError, match="contradicts the spectrum"):
        jaxspec.fit_binary(flux, wave, err=np.full(wave.size, 0.02), instrument="apogee")
    from jaxspec.fit.binary import _apply_instrument

    res, opts = _apply_instrument("lamost-lrs", wave, None, {})
    assert res == 1800.0 and opts == {"continuum_degree": 4}
    res, opts = _apply_instrument("lamost-lrs", wave, 2500.0, {"continuum_degree": 1})
    assert res == 2500.0 and opts == {"continuum_degree": 1}


@requires_survey
def test_a_preset_that_contradicts_the_file_rejects_it():
    from jaxspec.fit.result import FLAGS
    from jaxspec.survey import fit_spectra

    lrs = survey_file("lamost/spec-58397-EG014118N254444M01_sp03-031.fits")
    t = fit_spectra([lrs], instrument="galah")
    assert t["flag"][0] == FLAGS["rejected"]
    assert "instrument='galah' contradicts the file" in str(t["error"][0]) and "LAMOST low resolution" in str(t["error"][0])
    with pytest.raises(ValueError, match="unknown instrument"):
        fit_spectra([lrs], instrument="lamost")
