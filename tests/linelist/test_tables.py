"""Shipped atomic tables: reproducible from the shared files, spot values, interpolation."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxspec.linelist.atomic import AtomicTables, load_atomic_tables, partition_function
from tests._shared import SHARED_DATA, requires_shared

REPO = Path(__file__).resolve().parents[2]
FE = 25  # z_index of iron


def _build_script():
    spec = importlib.util.spec_from_file_location(
        "build_atomic_data", REPO / "scripts" / "build_atomic_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@requires_shared
def test_shipped_tables_match_build_script():
    built = _build_script().build_tables(SHARED_DATA)
    path = REPO / "src" / "jaxspec" / "data" / "atomic_tables.npz"
    with np.load(path, allow_pickle=False) as shipped:
        assert sorted(shipped.files) == sorted(built)
        for name, value in built.items():
            got = shipped[name]
            assert got.dtype != object, name
            assert got.shape == np.shape(value), name
            if np.issubdtype(got.dtype, np.floating):
                np.testing.assert_allclose(got, value, rtol=1e-12, atol=0, err_msg=name)
            else:
                np.testing.assert_array_equal(got, value, err_msg=name)


@requires_shared
def test_partition_join_matches_barklem_collet_at_1e4():
    script = _build_script()
    temps, bc = script.read_bc_partition(SHARED_DATA / script.BC_PARTITION)
    assert temps[-1] == 1e4
    tables = load_atomic_tables()
    i80 = int(np.argmin(np.abs(tables.log_t_grid - np.log(1e4))))
    for (z, stage), q in bc.items():
        assert tables.partition[z - 1, stage, i80] == pytest.approx(q[-1], rel=1e-9), (z, stage)


def test_spot_values():
    t = load_atomic_tables()
    q = partition_function(t, np.array([FE, FE]), np.array([0, 0]), np.array([5000.0, 6000.0]))
    np.testing.assert_allclose(np.asarray(q), [27.794, 31.741], rtol=1e-3)  # Barklem & Collet
    assert t.ionization_energy[FE, 0] == 7.9025
    np.testing.assert_array_equal(t.ionization_energy[FE], [7.9025, 16.199, 30.651])
    assert np.isnan(t.ionization_energy[0, 1])  # H has no IE2
    assert t.solar_abundance[FE] == 7.46
    assert t.solar_abundance[0] == 12.0
    assert t.solar_abundance_source[FE] == "photosphere"
    assert t.solar_abundance[32] == 2.30 and t.solar_abundance_source[32] == "meteorites"  # As
    assert np.isnan(t.solar_abundance[42]) and t.solar_abundance_source[42] == "none"  # Tc
    assert t.atomic_mass[FE] == pytest.approx(55.845)
    assert t.atomic_mass[0] == pytest.approx(0.5 * (1.00784 + 1.00811))  # interval midpoint
    assert t.atomic_mass[42] == pytest.approx(97.90721, abs=1e-4)  # Tc: mass of 98Tc
    assert t.elements[FE] == "Fe" and t.z_index("Mg") == 11
    # Only H III lacks a partition function; H II is a bare proton.
    assert not t.partition_known[0, 2]
    assert int(t.partition_known.sum()) == 92 * 3 - 1
    np.testing.assert_array_equal(t.partition[0, 1], 1.0)
    assert any("Asplund" in s for s in t.sources) and any("Barklem" in s for s in t.sources)


def test_tables_are_plain_readonly_arrays():
    t = load_atomic_tables()
    assert load_atomic_tables() is t  # cached
    for f in dataclasses.fields(t):
        a = getattr(t, f.name)
        assert isinstance(a, np.ndarray) and a.dtype != object, f.name
        assert not a.flags.writeable, f.name
    grid = t.log_t_grid
    np.testing.assert_allclose(np.diff(grid), np.diff(grid)[0], rtol=1e-10)
    assert np.exp(grid[0]) == pytest.approx(1000.0) and np.exp(grid[-1]) > 30000.0
    assert np.all(np.isfinite(t.partition)) and np.all(t.partition > 0)


def test_partition_function_continuous_at_1e4():
    t = load_atomic_tables()
    z, ion = np.nonzero(t.partition_known)
    below = np.asarray(partition_function(t, z, ion, 1e4 * (1 - 1e-6)), dtype=np.float64)
    above = np.asarray(partition_function(t, z, ion, 1e4 * (1 + 1e-6)), dtype=np.float64)
    np.testing.assert_allclose(above, below, rtol=1e-4)
    # No kink big enough to matter: the step in ln Q across the join node is
    # within a factor of a few of the steps on either side for iron.
    i80 = int(np.argmin(np.abs(t.log_t_grid - np.log(1e4))))
    for stage in range(3):
        d = np.diff(np.log(t.partition[FE, stage, i80 - 2 : i80 + 3]))
        assert np.all(d > 0) and d.max() < 3 * d.min(), (stage, d)


def test_partition_function_interpolates_and_clamps():
    t = load_atomic_tables()
    g = t.log_t_grid
    z, ion = np.array([FE, 11, 0]), np.array([1, 0, 0])
    mid = np.exp(0.5 * (g[10] + g[11]))
    expected = 0.5 * (t.partition[z, ion, 10] + t.partition[z, ion, 11])
    np.testing.assert_allclose(np.asarray(partition_function(t, z, ion, mid)), expected, rtol=1e-5)
    lo = np.asarray(partition_function(t, z, ion, 100.0))
    hi = np.asarray(partition_function(t, z, ion, 1e6))
    np.testing.assert_allclose(lo, t.partition[z, ion, 0], rtol=1e-6)
    np.testing.assert_allclose(hi, t.partition[z, ion, -1], rtol=1e-6)


def test_partition_function_jits_and_differentiates():
    t = load_atomic_tables()
    z, ion = np.array([FE, FE]), np.array([0, 1])

    @jax.jit
    def f(temp):
        return partition_function(t, z, ion, temp)

    assert f(5000.0).shape == (2,)
    np.testing.assert_allclose(
        np.asarray(f(5000.0)), np.asarray(partition_function(t, z, ion, 5000.0))
    )
    grad = jax.grad(lambda temp: f(temp)[0])(5000.0)
    assert np.isfinite(grad) and grad > 0  # Q(Fe I) rises with T
    # Also works from a plain mapping of arrays.
    q = partition_function({"log_t_grid": t.log_t_grid, "partition": t.partition}, z, ion, 5000.0)
    np.testing.assert_allclose(np.asarray(q), np.asarray(f(5000.0)))


def test_from_mapping_rejects_bad_shapes():
    t = load_atomic_tables()
    arrays = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
    arrays["partition"] = arrays["partition"][:, :2]
    with pytest.raises(ValueError, match="partition"):
        AtomicTables.from_mapping(arrays)
    del arrays["partition"]
    with pytest.raises(ValueError, match="lack"):
        AtomicTables.from_mapping(arrays)


@requires_shared
def test_shipped_linelist_matches_build_script():
    """The built-in line list is what the script builds from the shared VALD and Gaia-ESO files.

    (The calibration offsets are written later by scripts/calibrate_sun.py and
    are not compared here.) float32 fields are compared at float32 precision.
    """
    script = _build_script()
    tables = AtomicTables.from_mapping(script.build_tables(SHARED_DATA))
    built, _ = script.select_lines(script.candidate_lines(SHARED_DATA), tables)
    path = REPO / "src" / "jaxspec" / "data" / "linelist_builtin.npz"
    with np.load(path, allow_pickle=False) as shipped:
        assert shipped["wave"].shape == built.wave.shape
        for f in dataclasses.fields(built):
            want = np.asarray(getattr(built, f.name))
            got = shipped[f.name]
            if np.issubdtype(got.dtype, np.floating):
                np.testing.assert_allclose(got, want.astype(got.dtype), rtol=0, atol=0,
                                           equal_nan=True, err_msg=f.name)
            else:
                np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=f.name)
        assert np.count_nonzero(shipped["loggf_offset"]) > 10000  # calibrated
