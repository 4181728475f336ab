"""Emulator files: The Payne / binspec npz importers and jaxspec's own HDF5 format.

Importers read published networks (``numpy.load(path, allow_pickle=False)``):

* The Payne (Ting et al. 2019): ``w_array_0`` (H1, L), ``b_array_0`` (H1,),
  ``w_array_1`` (H2, H1), ``b_array_1`` (H2,), ``w_array_2`` (P, H2),
  ``b_array_2`` (P,), ``x_min``, ``x_max`` (L,); two hidden layers with leaky
  ReLU (slope 0.01), linear output.
* binspec (El-Badry et al. 2018), one network per pixel: ``w_array_0``
  (P, H, L), ``b_array_0`` (P, H), ``w_array_1`` (P, H), ``b_array_1`` (P,),
  ``x_min``, ``x_max`` (L,); sigmoid hidden units.

HDF5 schema of :func:`save` (format ``"jaxspec-emulator"``, version 1)::

    /                 attrs: format = "jaxspec-emulator", format_version = 1,
                             label_names (JSON list), architecture (JSON dict:
                             kind "mlp" | "per_pixel", sizes, activation),
                             range_policy, jaxspec_version
    /params/<path>    one dataset per network parameter, named by its
                      ``nnx.state`` path (``params/layers/0/kernel``, ``params/w0``)
    /x_min, /x_max    (L,) label scaling
    /flux_offset, /flux_scale   () or (P,)
    /wave             (P,) float64 vacuum wavelengths [A]
    /label_bounds     (L, 2) float64

Only numeric datasets and string/integer attributes: nothing is pickled.
Arrays keep their dtype, so a save -> load round trip predicts bit-identically.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from jaxspec._version import __version__
from jaxspec.emulator.emulator import Emulator
from jaxspec.emulator.networks import network_arrays, network_from_arrays

__all__ = ["FORMAT", "FORMAT_VERSION", "from_binspec", "from_payne", "load", "save"]

FORMAT = "jaxspec-emulator"
FORMAT_VERSION = 1
_DATASETS = ("x_min", "x_max", "flux_offset", "flux_scale", "wave", "label_bounds")


# ---------------------------------------------------------------- npz importers


def _read_npz(path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The ``required`` arrays of an npz file, loaded without pickles, checked finite."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such network file: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: not a readable npz file without pickles ({err})") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds a single array, not an npz archive of named arrays")
    with npz:
        missing = [k for k in required if k not in npz.files]
        if missing:
            raise ValueError(f"{path}: missing array {missing[0]!r} (needs {', '.join(required)})")
        try:
            arrays = {k: np.asarray(npz[k]) for k in required}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"{path}: not a readable npz file without pickles ({err})") from err
    for k, a in arrays.items():
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{path}: array {k!r} has non-numeric dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: array {k!r} has non-finite values")
    return arrays


def _check_shapes(path, arrays: dict, expected: dict[str, tuple], meaning: str) -> None:
    for k, shape in expected.items():
        if arrays[k].shape != shape:
            raise ValueError(
                f"{path}: {k} has shape {arrays[k].shape}, expected {shape} ({meaning})"
            )


def _label_count(path, arrays: dict, key: str, axis: int, label_names) -> int:
    a = arrays[key]
    if a.ndim == 0:
        raise ValueError(f"{path}: {key} is a scalar; expected a weight matrix")
    n = a.shape[axis]
    if n != len(label_names):
        raise ValueError(
            f"{path}: the network takes {n} labels ({key} shape {a.shape}) but "
            f"{len(label_names)} label_names were given: {tuple(label_names)}"
        )
    return n


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def from_payne(
    path,
    label_names,
    wave,
    *,
    label_bounds=None,
    flux_offset=0.0,
    flux_scale=1.0,
    range_policy: str = "extrapolate",
    dtype=None,
) -> Emulator:
    """Import a network in The Payne's npz layout (two leaky-ReLU hidden layers).

    Args:
        path: the ``.npz`` file (keys in the module docstring; others ignored).
        label_names: names of the network's inputs, in order.
        wave: (P,) vacuum wavelengths [A] of its outputs.
        label_bounds, flux_offset, flux_scale, range_policy: as for
            :class:`~jaxspec.emulator.Emulator`.
        dtype: parameter dtype; default JAX's default float (float32, or
            float64 with ``JAX_ENABLE_X64``).

    Returns:
        An :class:`~jaxspec.emulator.Emulator` with an
        :class:`~jaxspec.emulator.networks.MLP` (hidden (H1, H2), leaky ReLU).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or pickled file, a missing array (named),
            inconsistent shapes, non-finite weights, a label-count or pixel-count
            mismatch, or bad wavelengths.
    """
    keys = ("w_array_0", "b_array_0", "w_array_1", "b_array_1", "w_array_2", "b_array_2", "x_min", "x_max")
    a = _read_npz(path, keys)
    n_lab = _label_count(path, a, "w_array_0", -1, label_names)
    if a["w_array_0"].ndim != 2 or a["w_array_1"].ndim != 2 or a["w_array_2"].ndim != 2:
        raise ValueError(f"{path}: w_array_0..2 must be 2-D (The Payne's layout)")
    h1, h2, n_pix = a["w_array_0"].shape[0], a["w_array_1"].shape[0], a["w_array_2"].shape[0]
    _check_shapes(path, a, {
        "b_array_0": (h1,),
        "w_array_1": (h2, h1),
        "b_array_1": (h2,),
        "w_array_2": (n_pix, h2),
        "b_array_2": (n_pix,),
        "x_min": (n_lab,),
        "x_max": (n_lab,),
    }, f"{n_lab} labels, hidden ({h1}, {h2}), {n_pix} pixels")
    _check_pixels(path, wave, n_pix)
    dt = _dtype(dtype)
    arch = {"kind": "mlp", "n_labels": n_lab, "n_pix": n_pix, "hidden": [h1, h2], "activation": "leaky_relu"}
    params = {}
    for i in range(3):
        params[f"layers/{i}/kernel"] = a[f"w_array_{i}"].T.astype(dt)
        params[f"layers/{i}/bias"] = a[f"b_array_{i}"].astype(dt)
    net = network_from_arrays(arch, params, source=str(path))
    return Emulator(
        net, a["x_min"], a["x_max"], label_names=label_names, wave=wave, label_bounds=label_bounds,
        flux_offset=flux_offset, flux_scale=flux_scale, range_policy=range_policy,
    )


def from_binspec(
    path,
    label_names,
    wave,
    *,
    label_bounds=None,
    flux_offset=0.0,
    flux_scale=1.0,
    range_policy: str = "extrapolate",
    dtype=None,
) -> Emulator:
    """Import a binspec per-pixel npz network (one sigmoid network per pixel).

    Arguments, return value and errors as :func:`from_payne`; the network is a
    :class:`~jaxspec.emulator.networks.PerPixelNet`. binspec's
    ``NN_unnormalized_spectra.npz`` predicts 1e6 x the physical flux: pass
    ``flux_scale=1e-6`` for physical units.
    """
    keys = ("w_array_0", "b_array_0", "w_array_1", "b_array_1", "x_min", "x_max")
    a = _read_npz(path, keys)
    n_lab = _label_count(path, a, "w_array_0", -1, label_names)
    if a["w_array_0"].ndim != 3:
        raise ValueError(
            f"{path}: w_array_0 has shape {a['w_array_0'].shape}; binspec's layout is "
            "(pixels, hidden, labels)"
        )
    n_pix, n_hid = a["w_array_0"].shape[:2]
    _check_shapes(path, a, {
        "b_array_0": (n_pix, n_hid),
        "w_array_1": (n_pix, n_hid),
        "b_array_1": (n_pix,),
        "x_min": (n_lab,),
        "x_max": (n_lab,),
    }, f"{n_pix} pixels x {n_hid} hidden x {n_lab} labels")
    _check_pixels(path, wave, n_pix)
    dt = _dtype(dtype)
    arch = {
        "kind": "per_pixel", "n_labels": n_lab, "n_pix": n_pix, "n_hidden": n_hid, "activation": "sigmoid",
    }
    params = {
        "w0": a["w_array_0"].transpose(2, 1, 0).reshape(n_lab, n_hid * n_pix).astype(dt),
        "b0": a["b_array_0"].T.reshape(n_hid * n_pix).astype(dt),
        "w1": a["w_array_1"].T.astype(dt),
        "b1": a["b_array_1"].astype(dt),
    }
    net = network_from_arrays(arch, params, source=str(path))
    return Emulator(
        net, a["x_min"], a["x_max"], label_names=label_names, wave=wave, label_bounds=label_bounds,
        flux_offset=flux_offset, flux_scale=flux_scale, range_policy=range_policy,
    )


def _check_pixels(path, wave, n_pix: int) -> None:
    n = np.size(wave)
    if n != n_pix:
        raise ValueError(f"{path}: the network has {n_pix} output pixels but wave has {n}")


# ------------------------------------------------------------------------ HDF5


def save(emulator: Emulator, path) -> None:
    """Write ``emulator`` to an HDF5 file (schema in the module docstring).

    Raises:
        OSError: the file cannot be written.
    """
    import h5py

    arrays = network_arrays(emulator.network)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["label_names"] = json.dumps(list(emulator.label_names))
        f.attrs["architecture"] = json.dumps(emulator.architecture)
        f.attrs["range_policy"] = emulator.range_policy
        f.attrs["jaxspec_version"] = __version__
        for name, value in arrays.items():
            f.create_dataset(f"params/{name}", data=value)
        for name in _DATASETS:
            f.create_dataset(name, data=np.asarray(getattr(emulator, name)))


def _attr(f, name: str, path):
    if name not in f.attrs:
        raise ValueError(f"{path}: missing attribute {name!r}")
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v


def _dataset(f, name: str, path) -> np.ndarray:
    import h5py

    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"{path}: missing dataset {name!r}")
    if obj.dtype.kind not in "fiu":
        raise ValueError(f"{path}: dataset {name!r} has non-numeric dtype {obj.dtype}")
    return obj[()]


def load(path) -> Emulator:
    """Read an emulator written by :func:`save`.

    Returns:
        The :class:`~jaxspec.emulator.Emulator`, with parameters of the stored dtypes.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an HDF5 file, a wrong format tag, an unsupported
            format version, a missing or mis-shaped dataset or attribute (named),
            or contents that fail the emulator's own checks; the message starts
            with the path.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such emulator file: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from err
    with f:
        fmt = _attr(f, "format", path)
        if fmt != FORMAT:
            raise ValueError(f"{path}: format tag is {fmt!r}, not {FORMAT!r}: not a jaxspec emulator file")
        version = _attr(f, "format_version", path)
        if isinstance(version, np.generic):
            version = version.item()
        if not isinstance(version, int) or version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: unsupported format_version {version!r} (this jaxspec {__version__} reads "
                f"{FORMAT_VERSION})"
            )
        try:
            label_names = json.loads(_attr(f, "label_names", path))
            arch = json.loads(_attr(f, "architecture", path))
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(
                f"{path}: attribute label_names or architecture is not valid JSON ({err})"
            ) from err
        if not isinstance(label_names, list) or not all(isinstance(n, str) for n in label_names):
            raise ValueError(f"{path}: attribute label_names must be a JSON list of strings")
        policy = _attr(f, "range_policy", path)
        group = f.get("params")
        if not isinstance(group, h5py.Group):
            raise ValueError(f"{path}: missing group 'params'")
        params = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                params[name] = _dataset(group, name, path)

        group.visititems(visit)
        data = {name: _dataset(f, name, path) for name in _DATASETS}
    try:
        net = network_from_arrays(arch, params, source=str(path))
    except ValueError as err:
        raise ValueError(err.args[0] if str(path) in str(err) else f"{path}: {err}") from err
    try:
        return Emulator(
            net, data["x_min"], data["x_max"], label_names=label_names, wave=data["wave"],
            label_bounds=data["label_bounds"], flux_offset=data["flux_offset"],
            flux_scale=data["flux_scale"], range_policy=policy,
        )
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


