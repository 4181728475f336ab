"""Line-list readers: the real VALD3 and Gaia-ESO files, and malformed inputs."""

from __future__ import annotations

import gzip
import re
import time

import numpy as np
import pytest

from jaxspec.linelist.io import read_moog, read_vald
from jaxspec.physics.airvac import air_to_vacuum
from tests._shared import SHARED_DATA, requires_shared

VALD_FILE = SHARED_DATA / "atomic/linelists/vald3_sun_extract_stellar_3000-9000A_vac.vald.gz"
GES_FILE = SHARED_DATA / "atomic/linelists/gaia_eso_v5_atomic_nohfs_noiso_moog_air.list.gz"


def _has(ll, wave, z, ion, tol=1e-3):
    hit = (np.abs(ll.wave - wave) < tol) & (ll.z == z) & (ll.ion == ion)
    return bool(hit.any())


# ---------------------------------------------------------------------------
# real files


@requires_shared
def test_read_vald_real_file_counts_and_values():
    ll, info = read_vald(VALD_FILE, return_info=True)
    # Numbers from shared/data/atomic/README.md.
    assert info["n_records"] == 19257
    assert len(ll) == info["n_atomic"] == 17427
    assert info["skipped_molecules"] == 1830
    assert info["molecules"] == {"CH": 608, "CN": 486, "OH": 447, "NH": 289}
    assert info["air"] is False
    assert int((ll.ion == 0).sum()) == 12833
    assert int((ll.ion == 1).sum()) == 4594
    assert ll.wave.min() == pytest.approx(3000.0414)
    assert ll.wave.max() == pytest.approx(8997.0972)
    # First record: 'Fe 1', 3000.0414, 3.3014, 1.0, -2.957, 7.280, -3.910, -7.330, ...
    assert (ll.z[0], ll.ion[0], ll.source[0]) == (26, 0, 0)
    np.testing.assert_allclose(
        [ll.wave[0], ll.chi[0], ll.loggf[0], ll.log_gamma_rad[0], ll.log_gamma_stark[0], ll.vdw[0]],
        [3000.0414, 3.3014, -2.957, 7.28, -3.91, -7.33],
    )
    for wave in (5168.761, 5174.125, 5185.048):  # Mg I b, vacuum
        assert _has(ll, wave, 12, 0), wave
    # 0.0 damping means "not given" -> NaN, never a literal 0.
    for name in ("log_gamma_rad", "log_gamma_stark", "vdw"):
        a = getattr(ll, name)
        assert not np.any(a == 0.0), name
        assert np.isnan(a).any(), name
    # Hydrogen kept, with VALD's quantum numbers passed through (H-beta: 2 -> 4).
    hyd = ll.z == 1
    assert int(hyd.sum()) == 21
    i = int(np.argmin(np.abs(ll.wave - 4862.681)))
    assert ll.z[i] == 1 and ll.vdw[i] == 4.0 and ll.log_gamma_stark[i] == 2.0


@requires_shared
def test_read_moog_real_file():
    t0 = time.perf_counter()
    ll, info = read_moog(GES_FILE, return_info=True)
    elapsed = time.perf_counter() - t0
    assert len(ll) == info["n_records"] == 102091
    assert info["skipped_molecules"] == 0
    assert int((ll.ion == 0).sum()) == 52658
    assert int((ll.ion == 1).sum()) == 49433
    assert np.all(ll.source == 1)
    # Mg I 5172.684 (air) -> vacuum, ABO damping kept packed.
    i = int(np.argmin(np.abs(ll.wave - air_to_vacuum(5172.684))))
    assert (ll.z[i], ll.ion[i]) == (12, 0)
    assert ll.wave[i] == pytest.approx(float(air_to_vacuum(5172.684)), abs=1e-9)
    assert ll.wave[i] == pytest.approx(5174.1248, abs=2e-3)  # 1.44 A redder than air
    assert ll.vdw[i] == pytest.approx(729.238)
    assert ll.loggf[i] == pytest.approx(-0.45)
    # C6 = 0.000 in 22,695 lines -> NaN; none left at 0.
    assert int(np.isnan(ll.vdw).sum()) == 22695
    assert not np.any(ll.vdw == 0.0)
    assert ll.wave.min() == pytest.approx(float(air_to_vacuum(4200.019)))
    # Not vacuum unless asked: air=False leaves the wavelength column alone.
    raw = read_moog(GES_FILE, air=False)
    assert raw.wave[0] == pytest.approx(4200.019)
    assert elapsed < 5.0, f"read_moog took {elapsed:.2f} s on the 100k-line GES file"


# ---------------------------------------------------------------------------
# small synthetic VALD files

_VALD_HEADER = (
    " 5000.00000, 5200.00000, {n}, 1000, 1.0 Wavelength region, lines selected, "
    "lines processed, Vmicro\n"
    "                                                  Damping parameters    Lande  Central\n"
    "Spec Ion       {wl}  Excit(eV) Vmic log gf* Rad.   Stark   Waals   factor  depth  Reference\n"
)
_REFS = "'   1 wl:K14   1 K14   1 gf:K14   1 K14   1 K14   1 K14   1 K14 Fe            '"
_VALD_ROWS = [
    f"'Fe 1',  5001.0000,  3.3014, 1.0, -2.957, 7.280,-3.910,  -7.330,  1.110, 0.270, {_REFS}",
    f"'CH 1',  5002.0000,  0.5000, 1.0, -3.000, 0.000, 0.000,   0.000, 99.000, 0.120, {_REFS}",
    f"'Mg 1',  5168.7610,  2.7091, 1.0, -1.027, 8.000, 0.000, 729.238,  1.500, 0.800, {_REFS}",
    f"'Ti 2',  5100.0000,  1.5000, 1.0, -1.500, 0.000,-6.000,   0.000,  1.000, 0.300, {_REFS}",
]
_VALD_FOOTER = "'castelli_ap00k2_T05750G40.krz',\n'H :  0.92','END'\n References:\n"


def _write_vald(path, rows, n=None, wl="WL_vac(A)", compress=False):
    text = _VALD_HEADER.format(n=len(rows) if n is None else n, wl=wl) + "\n".join(rows) + "\n"
    text += _VALD_FOOTER
    if compress:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_read_vald_small_file(tmp_path):
    ll, info = read_vald(_write_vald(tmp_path / "a.vald", _VALD_ROWS), return_info=True)
    assert info["skipped_molecules"] == 1 and info["n_atomic"] == 3
    np.testing.assert_array_equal(ll.z, [26, 12, 22])
    np.testing.assert_array_equal(ll.ion, [0, 0, 1])
    np.testing.assert_allclose(ll.wave, [5001.0, 5168.761, 5100.0])
    assert ll.vdw[1] == pytest.approx(729.238)
    assert np.isnan(ll.log_gamma_stark[1]) and np.isnan(ll.log_gamma_rad[2])
    assert np.isnan(ll.vdw[2]) and ll.log_gamma_stark[2] == -6.0


def test_read_vald_gzip_detected_by_magic_bytes(tmp_path):
    plain = read_vald(_write_vald(tmp_path / "plain.vald", _VALD_ROWS))
    # Compressed under a misleading name, and plain under a .gz name.
    packed = read_vald(_write_vald(tmp_path / "packed.txt", _VALD_ROWS, compress=True))
    fake = read_vald(_write_vald(tmp_path / "fake.gz", _VALD_ROWS))
    for other in (packed, fake):
        np.testing.assert_array_equal(other.wave, plain.wave)
        np.testing.assert_array_equal(other.loggf, plain.loggf)


def test_read_vald_air_header_converts_to_vacuum(tmp_path):
    ll = read_vald(_write_vald(tmp_path / "air.vald", _VALD_ROWS, wl="WL_air(A)"))
    np.testing.assert_allclose(ll.wave, air_to_vacuum(np.array([5001.0, 5168.761, 5100.0])))
    assert ll.wave[0] > 5002.0


def test_read_vald_truncated_file(tmp_path):
    path = _write_vald(tmp_path / "t.vald", _VALD_ROWS, n=len(_VALD_ROWS) + 50)
    with pytest.raises(ValueError, match="truncated"):
        read_vald(path)


def test_read_vald_wrong_field_count(tmp_path):
    rows = list(_VALD_ROWS)
    rows[1] = "'Fe 1',  5002.0000,  3.3014, 1.0"
    with pytest.raises(ValueError, match="line 5: expected 11 comma-separated fields, got 4"):
        read_vald(_write_vald(tmp_path / "f.vald", rows))


def test_read_vald_non_numeric_field(tmp_path):
    rows = list(_VALD_ROWS)
    rows[2] = rows[2].replace("-1.027", "-1.0x7")
    with pytest.raises(ValueError, match=r"line 6: .*log gf.*not a number.*-1\.0x7"):
        read_vald(_write_vald(tmp_path / "n.vald", rows))


def test_read_vald_nan_loggf(tmp_path):
    rows = list(_VALD_ROWS)
    rows[0] = rows[0].replace("-2.957", "   nan")
    with pytest.raises(ValueError, match=r"line 4: .*log gf.*not finite"):
        read_vald(_write_vald(tmp_path / "nan.vald", rows))


def test_read_vald_bad_header_and_long_lines(tmp_path):
    path = tmp_path / "h.vald"
    path.write_text("this is not a VALD file\n")
    with pytest.raises(ValueError, match="line 1"):
        read_vald(path)
    rows = list(_VALD_ROWS)
    rows[3] = "'Ti 2', " + "x" * 500
    with pytest.raises(ValueError, match="line 7") as err:
        read_vald(_write_vald(tmp_path / "long.vald", rows))
    assert len(str(err.value)) < 200  # the offending text is truncated


# ---------------------------------------------------------------------------
# small synthetic MOOG files

_MOOG_FIXED = [
    "title line",
    " 5000.0000  26.00000    1.8790    -2.491    -7.680               0.250",
    " 5001.0000  26.10000    2.0000    -1.000     0.000               1.200",
    " 5002.0000  12.00000    2.7120    -0.450   729.238            1374.580",
    " 5003.0000 606.00000    0.5000    -1.000     0.000",
]


def _write(path, lines, compress=False):
    text = "\n".join(lines) + "\n"
    if compress:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_read_moog_fixed_width_and_whitespace_agree(tmp_path):
    fixed, info = read_moog(_write(tmp_path / "f.list", _MOOG_FIXED), air=False, return_info=True)
    assert info["skipped_molecules"] == 1 and len(fixed) == 3
    np.testing.assert_array_equal(fixed.z, [26, 26, 12])
    np.testing.assert_array_equal(fixed.ion, [0, 1, 0])
    assert np.isnan(fixed.vdw[1]) and fixed.vdw[2] == pytest.approx(729.238)
    assert np.all(np.isnan(fixed.log_gamma_rad))
    loose = [_MOOG_FIXED[0]] + [" ".join(r.split()) for r in _MOOG_FIXED[1:]]
    spaced = read_moog(_write(tmp_path / "w.list", loose), air=False)
    for name in ("wave", "z", "ion", "chi", "loggf", "vdw"):
        np.testing.assert_array_equal(getattr(spaced, name), getattr(fixed, name), err_msg=name)
    packed = read_moog(_write(tmp_path / "g.bin", _MOOG_FIXED, compress=True), air=False)
    np.testing.assert_array_equal(packed.wave, fixed.wave)


def test_read_moog_touching_columns_and_blank_c6(tmp_path):
    lines = [
        "title",
        " 5000.0000  26.00000    1.8790-10.491000  -7.68000",  # log gf touches EP
        " 5001.0000  26.00000    1.8790    -2.491                        12.000",  # no C6, EW
    ]
    ll = read_moog(_write(tmp_path / "t.list", lines), air=True)
    np.testing.assert_allclose(ll.loggf, [-10.491, -2.491])
    assert ll.vdw[0] == pytest.approx(-7.68)
    assert np.isnan(ll.vdw[1])  # blank C6, EW must not be taken for it
    np.testing.assert_allclose(ll.wave, air_to_vacuum(np.array([5000.0, 5001.0])))


def test_read_moog_malformed_rows(tmp_path):
    bad_count = _MOOG_FIXED[:2] + ["5001.0 26.1"] + _MOOG_FIXED[2:]
    with pytest.raises(ValueError, match="line 3: expected at least 4 columns"):
        read_moog(_write(tmp_path / "a.list", bad_count))
    bad_number = _MOOG_FIXED[:3] + ["5001.0 26.1 abc -1.0 0.0"]
    with pytest.raises(ValueError, match=r"line 4: .*not a number.*'abc'"):
        read_moog(_write(tmp_path / "b.list", bad_number))
    bad_nan = _MOOG_FIXED[:2] + [" 5001.0000  26.10000    2.0000       nan     0.000"]
    with pytest.raises(ValueError, match=r"line 3: log gf is not finite"):
        read_moog(_write(tmp_path / "c.list", bad_nan))


def test_error_messages_quote_the_offending_text(tmp_path):
    bad = _MOOG_FIXED[:2] + ["5001.0 26.1 abc -1.0 0.0"]
    with pytest.raises(ValueError) as err:
        read_moog(_write(tmp_path / "q.list", bad))
    assert re.search(r"'5001\.0 26\.1 abc -1\.0 0\.0'", str(err.value))
