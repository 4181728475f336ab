"""The HDF5 survey stack: lossless round trips, partial reads, air wavelengths, clear errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from jaxspec.io.stack import StackWriter, read_stack, stack_info, write_stack
from jaxspec.physics import air_to_vacuum


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    wave = np.geomspace(5000.0, 5100.0, 300)
    flux = (1 + 0.01 * rng.normal(size=(7, 300))).astype(np.float32)
    err = rng.uniform(0.01, 0.03, size=(7, 300))  # float64, unlike flux: both dtypes must survive
    err[2, 10] = np.inf
    return wave, flux, err


def test_round_trip_is_lossless(tmp_path, data):
    wave, flux, err = data
    meta = {"snr": np.arange(7, dtype=np.float32) * 10.5, "field": np.array([f"f{i % 3}" for i in range(7)]),
            "mjd": np.arange(7, dtype=np.int64) + 56000}
    res = np.linspace(7000, 8000, 7)
    write_stack(tmp_path / "s.h5", flux, wave, err=err, ids=[f"2M{i:04d}" for i in range(7)],
                resolution=res, meta=meta)
    s = read_stack(tmp_path / "s.h5")
    assert s.flux.dtype == np.float32 and s.err.dtype == np.float64 and s.ivar is None
    np.testing.assert_array_equal(s.flux, flux)
    np.testing.assert_array_equal(s.err, err)
    np.testing.assert_array_equal(s.wave, wave)
    np.testing.assert_array_equal(s.resolution, res)
    assert list(s.ids) == [f"2M{i:04d}" for i in range(7)]
    for k, v in meta.items():
        assert s.meta[k].dtype.kind == v.dtype.kind or (v.dtype.kind == "U" and s.meta[k].dtype.kind == "O")
        assert [str(x) for x in s.meta[k]] == [str(x) for x in v]
    info = stack_info(tmp_path / "s.h5")
    assert info["n"] == 7 and info["n_pixels"] == 300 and info["uncertainty"] == "err"
    assert info["resolution"] == "per spectrum" and info["meta"] == sorted(meta)


def test_partial_reads_and_writer_appends(tmp_path, data):
    wave, flux, err = data
    ivar = 1.0 / err.astype(np.float32) ** 2
    with StackWriter(tmp_path / "s.h5", wave, uncertainty="ivar", resolution=22500.0,
                     meta_columns={"snr": np.float64}) as w:
        for a in range(0, 7, 3):
            w.append(flux[a:a + 3], ivar[a:a + 3], ids=[f"s{i}" for i in range(a, min(a + 3, 7))],
                     meta={"snr": np.full(min(3, 7 - a), 50.0)})
    part = read_stack(tmp_path / "s.h5", 2, 5)
    np.testing.assert_array_equal(part.flux, flux[2:5])
    np.testing.assert_array_equal(part.ivar, ivar[2:5])
    assert list(part.ids) == ["s2", "s3", "s4"] and part.start == 2
    np.testing.assert_array_equal(part.resolution, [22500.0] * 3)
    with h5py.File(tmp_path / "s.h5") as f:
        assert f.attrs["n_spectra"] == 7 and f.attrs["format"] == "jaxspec-stack"
    with pytest.raises(ValueError, match="outside the stack's 7 spectra"):
        read_stack(tmp_path / "s.h5", 5, 9)


def test_air_wavelengths_become_vacuum(tmp_path, data):
    wave, flux, err = data
    write_stack(tmp_path / "a.h5", flux, wave, err=err, air=True)
    s = read_stack(tmp_path / "a.h5")
    np.testing.assert_allclose(s.wave, air_to_vacuum(wave), rtol=0, atol=1e-9)
    assert s.wave[0] > wave[0] + 1.0  # about 1.4 A at 5000 A


def test_bad_input_and_bad_files(tmp_path, data):
    wave, flux, err = data
    with pytest.raises(ValueError, match="flux must be"):
        write_stack(tmp_path / "x.h5", flux[:, :-1], wave, err=err)
    with pytest.raises(ValueError, match="exactly one of ivar or err"):
        write_stack(tmp_path / "x.h5", flux, wave)
    with pytest.raises(ValueError, match="err has shape"):
        write_stack(tmp_path / "x.h5", flux, wave, err=err[:3])
    with pytest.raises(ValueError, match="ids must have one entry"):
        write_stack(tmp_path / "x.h5", flux, wave, err=err, ids=["a"])
    with pytest.raises(ValueError, match="increasing"):
        write_stack(tmp_path / "x.h5", flux, wave[::-1], err=err)
    (tmp_path / "junk.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        read_stack(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["flux"] = flux
    with pytest.raises(ValueError, match="not a jaxspec stack"):
        read_stack(tmp_path / "other.h5")
