"""Air <-> vacuum conversion (IAU / Morton 2000)."""

import numpy as np
import pytest

from jaxspec.physics import air_to_vacuum, vacuum_to_air


def test_mg_b_line():
    # Mg I b1: 5183.604 A in air is 5185.048 A in vacuum (NIST / VALD).
    assert air_to_vacuum(5183.604) == pytest.approx(5185.048, abs=1e-3)
    assert vacuum_to_air(5185.048) == pytest.approx(5183.604, abs=1e-3)


def test_round_trip():
    wave = np.linspace(3000.0, 20000.0, 5001)
    back = air_to_vacuum(vacuum_to_air(wave))
    np.testing.assert_allclose(back, wave, rtol=0, atol=1e-8)
    # and the shift is of the right size and sign (air < vacuum, ~1.4 A at 5000 A)
    shift = wave - vacuum_to_air(wave)
    assert np.all((shift > 0.8) & (shift < 5.6))
