"""Results tables: FITS, HDF5 and ECSV round trips with units and metadata."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest

from jaxspec.fit.result import FLAGS
from jaxspec.io.results import columns, failed_rows, read_results, results_table, write_results

NAMES = ["teff_1", "logg_1", "teff_2", "logg_2", "feh", "rv_1", "rv_2", "vsini_1", "vsini_2", "flux_ratio"]
UNITS = ["K", "dex", "K", "dex", "dex", "km/s", "km/s", "km/s", "km/s", ""]


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 5
    rows = failed_rows([f"star{i}" for i in range(n)], [f"f{i}.fits" for i in range(n)],
                       ["", "", "SpectrumFormatError: f2.fits: truncated", "", ""],
                       [0, 1, FLAGS["read_error"], 0, 0], NAMES, UNITS)
    for c, _ in columns(NAMES, UNITS):
        if rows[c].dtype == float:
            rows[c] = rng.normal(size=n) * 100
            rows[c][2] = np.nan
    rows["is_binary"] = np.array([True, False, False, True, False])
    rows["n_iter"] = np.array([12, 60, 0, 7, 9])
    return results_table(rows, NAMES, UNITS, meta={"run_settings": {"chunk_size": 2, "model": "default"}})


@pytest.mark.parametrize("ext", [".fits", ".h5", ".ecsv"])
def test_results_round_trip(tmp_path, table, ext):
    path = write_results(table, tmp_path / f"results{ext}")
    back = read_results(path)
    assert back.colnames == table.colnames
    for c in table.colnames:
        a, b = np.asarray(table[c]), np.asarray(back[c])
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b)  # NaN == NaN here; float64 written exactly
        else:
            assert a.tolist() == b.tolist(), c
        assert (table[c].unit or None) == (back[c].unit or None), c
    assert back["teff_1"].unit == u.K and back["logg_1"].unit == u.dex and back["rv_1"].unit == u.km / u.s
    assert back.meta["jaxspec_version"] == table.meta["jaxspec_version"]
    assert json.loads(back.meta["run_settings"]) == {"chunk_size": 2, "model": "default"}
    assert back["flag_message"][2] == "read error" and back["error"][2].startswith("SpectrumFormatError")


def test_write_is_atomic_and_format_checked(tmp_path, table):
    with pytest.raises(ValueError, match="cannot tell the results format"):
        write_results(table, tmp_path / "results.txt")
    write_results(table, tmp_path / "r.fits")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.fits"]  # no temporary file left
    with pytest.raises(FileExistsError):
        write_results(table, tmp_path / "r.fits", overwrite=False)
