"""The built-in line list shipped in jaxspec/data/linelist_builtin.npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxspec.linelist.builtin import builtin_linelist
from jaxspec.linelist.io import read_vald
from tests._shared import SHARED_DATA, requires_shared

DATA = Path(__file__).resolve().parents[2] / "src" / "jaxspec" / "data"


def _nearest(ll, wave, z, ion):
    sel = (ll.z == z) & (ll.ion == ion)
    return float(np.min(np.abs(ll.wave[sel] - wave))) if sel.any() else np.inf


def test_builtin_coverage_and_key_lines():
    ll = builtin_linelist()
    assert len(ll) >= 10_000
    assert ll.wave.dtype == np.float64
    assert 3800.0 <= ll.wave.min() < 3810.0 and 8990.0 < ll.wave.max() <= 9000.0
    assert np.all(np.diff(ll.wave) >= 0), "not sorted by wavelength"
    for wave in (5168.761, 5174.125, 5185.048):  # Mg I b, vacuum
        assert _nearest(ll, wave, 12, 0) < 2e-3, wave
    assert _nearest(ll, 4862.68, 1, 0) < 0.01  # H-beta, vacuum
    assert _nearest(ll, 6564.61, 1, 0) < 0.01  # H-alpha, vacuum
    # Lines in every 500 A and from both sources.
    counts = np.histogram(ll.wave, np.arange(3800.0, 9001.0, 500.0))[0]
    assert np.all(counts > 100), counts
    assert set(np.unique(ll.source)) == {0, 1}


def test_builtin_fields_valid():
    ll = builtin_linelist()
    for name in ("wave", "chi", "loggf"):
        assert np.all(np.isfinite(getattr(ll, name))), name
    for name in ("log_gamma_rad", "log_gamma_stark", "vdw"):
        a = getattr(ll, name)
        assert not np.any(np.isinf(a)) and not np.any(a == 0.0), name
    assert np.all((ll.z >= 1) & (ll.z <= 92)) and np.all((ll.ion >= 0) & (ll.ion <= 2))
    assert np.all(ll.chi >= 0) and np.all(ll.chi < 20)
    assert np.all(np.isnan(ll.log_gamma_rad[ll.source == 1]))  # MOOG has no radiative damping


def test_builtin_calibration_offsets_applied(monkeypatch):
    import jaxspec.linelist.builtin as builtin

    with np.load(DATA / "linelist_builtin.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    raw_loggf = arrays["loggf"].astype(np.float64)
    cal, raw = builtin_linelist(calibrated=True), builtin_linelist(calibrated=False)
    np.testing.assert_array_equal(raw.loggf, raw_loggf)
    np.testing.assert_allclose(cal.loggf - raw.loggf, arrays["loggf_offset"], atol=1e-7)
    assert builtin_linelist() is cal  # cached
    with pytest.raises(ValueError):
        cal.loggf[0] = 0.0  # shared, read-only
    # Non-zero offsets (the shipped ones may still be all zero) are added.
    offset = np.linspace(-0.3, 0.3, raw_loggf.size).astype(np.float32)
    monkeypatch.setattr(builtin, "_load_arrays", lambda: {**arrays, "loggf_offset": offset})
    builtin._builtin.cache_clear()
    try:
        shifted = builtin_linelist(calibrated=True)
        unshifted = builtin_linelist(calibrated=False)
    finally:
        builtin._builtin.cache_clear()
    np.testing.assert_allclose(shifted.loggf - raw_loggf, offset, atol=1e-6)
    np.testing.assert_array_equal(unshifted.loggf, raw_loggf)


def test_shipped_files_are_small_and_pickle_free():
    total = 0
    for name in ("atomic_tables.npz", "linelist_builtin.npz"):
        path = DATA / name
        total += path.stat().st_size
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                assert data[key].dtype != object, (name, key)
    assert total <= 4.2e6, f"shipped atomic data is {total / 1e6:.2f} MB"


@requires_shared
def test_builtin_holds_all_vald_lines_and_only_new_ges_lines():
    vald = read_vald(
        SHARED_DATA / "atomic/linelists/vald3_sun_extract_stellar_3000-9000A_vac.vald.gz"
    )
    ll = builtin_linelist(calibrated=False)
    in_range = vald.in_range(3800.0, 9000.0).sorted()
    ours = ll.select(ll.source == 0)
    assert len(ours) == len(in_range)
    np.testing.assert_array_equal(ours.wave, in_range.wave)
    np.testing.assert_array_equal(ours.z, in_range.z)
    np.testing.assert_allclose(ours.loggf, in_range.loggf, atol=1e-6)
    # No Gaia-ESO line duplicates a VALD line: same species within 0.02 A.
    ges = ll.select(ll.source == 1)
    for key in np.unique(ges.z * 3 + ges.ion):
        ref = np.sort(vald.wave[vald.z * 3 + vald.ion == key])
        if ref.size == 0:
            continue
        w = ges.wave[ges.z * 3 + ges.ion == key]
        j = np.clip(np.searchsorted(ref, w), 1, ref.size - 1)
        gap = np.minimum(np.abs(w - ref[j - 1]), np.abs(ref[j] - w))
        if ref.size == 1:
            gap = np.abs(w - ref[0])
        assert gap.min() > 0.02, key


def test_select_lines_falls_back_to_proxy(monkeypatch, capsys):
    import importlib.util
    import sys

    from jaxspec.linelist.atomic import load_atomic_tables
    from jaxspec.linelist.linelist import LineList

    spec = importlib.util.spec_from_file_location(
        "build_atomic_data", DATA.parents[2] / "scripts" / "build_atomic_data.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    vald = LineList.from_arrays(
        wave=[5174.125], z=[12], ion=[0], chi=[2.71], loggf=[-0.45], source=[0]
    )
    ges = LineList.from_arrays(
        wave=[5001.0, 5000.0],
        z=[26, 26],
        ion=[0, 0],
        chi=[1.0, 5.0],
        loggf=[0.0, -10.0],
        source=[1, 1],
    )
    candidates = script.Candidates(vald=vald, ges_new=ges, info={})
    monkeypatch.setitem(sys.modules, "jaxspec.linelist.strength", None)  # import fails
    merged, info = script.select_lines(candidates, load_atomic_tables())
    assert "WARNING" in capsys.readouterr().out
    assert info["strength_method"] == "proxy" and info["ges_added"] == 1
    np.testing.assert_array_equal(merged.wave, [5001.0, 5174.125])  # strong line kept, sorted
    np.testing.assert_array_equal(merged.source, [1, 0])
