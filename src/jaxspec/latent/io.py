"""Saving and loading a :class:`~jaxspec.latent.BetaVAE` as HDF5 (h5py; no pickle).

Schema (format version 1)::

    /            attrs: format = "jaxspec-vae", version = 1,
                        config (JSON: the BetaVAE arguments), meta (JSON, optional)
    /params/...  one float dataset per network array, named by its nnx.state path
                 (enc/0/kernel, offset, scale...)
    /wave        (P,) float64 vacuum wavelengths [A] of the training pixels (optional)

A file of another format version is refused with a message naming both versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxspec.latent.vae import BetaVAE

__all__ = ["VAE_FORMAT", "VAE_VERSION", "load_vae", "save_vae", "vae_info"]

#: The ``format`` attribute of a VAE file.
VAE_FORMAT = "jaxspec-vae"
#: The format version this jaxspec writes and reads.
VAE_VERSION = 1


def _name(path) -> str:
    return "/".join(str(k) for k in path)


def save_vae(path, vae: BetaVAE, *, wave=None, meta: dict | None = None) -> Path:
    """Write a VAE (architecture, weights, flux offset and scale) to an HDF5 file.

    Args:
        path: file to create (overwritten).
        vae: the :class:`~jaxspec.latent.BetaVAE`.
        wave: optional (P,) vacuum wavelengths [A] of the VAE's pixels, stored for checks at
            encoding time.
        meta: optional JSON-serializable dict (training options, a report).

    Returns:
        The path written.

    Raises:
        ValueError: ``wave`` of another length than the VAE's pixels.
    """
    import h5py

    if wave is not None:
        wave = np.asarray(wave, dtype=np.float64)
        if wave.shape != (vae.n_pix,):
            raise ValueError(f"wave has shape {wave.shape}; the VAE has {vae.n_pix} pixels")
    with h5py.File(path, "w") as f:
        f.attrs["format"] = VAE_FORMAT
        f.attrs["version"] = VAE_VERSION
        f.attrs["config"] = json.dumps(vae.config)
        if meta is not None:
            f.attrs["meta"] = json.dumps(meta, default=float)
        g = f.create_group("params")
        for p, var in nnx.to_flat_state(nnx.state(vae)):
            g.create_dataset(_name(p), data=np.asarray(var[...]))
        if wave is not None:
            f.create_dataset("wave", data=wave)
    return Path(path)


def _open(path):
    from jaxspec._h5 import open_versioned

    return open_versioned(path, VAE_FORMAT, VAE_VERSION, "VAE",
                          "retrain or re-save the VAE with a matching jaxspec")


def vae_info(path) -> dict:
    """The architecture, metadata and wavelengths of a VAE file, without building the network.

    Args:
        path: a file written by :func:`save_vae`.

    Returns:
        ``{"version", "config", "meta", "wave"}``: the format version, the
        :class:`~jaxspec.latent.BetaVAE` arguments, the stored metadata (or None) and the
        (P,) vacuum wavelengths [A] (or None).

    Raises:
        ValueError: not a VAE file, another format version, or a corrupt header.
    """
    with _open(path) as f:
        try:
            config = json.loads(f.attrs["config"])
            meta = json.loads(f.attrs["meta"]) if "meta" in f.attrs else None
        except (KeyError, json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: corrupt VAE file header ({err})") from err
        wave = f["wave"][()] if "wave" in f else None
        return {"version": int(f.attrs["version"]), "config": config, "meta": meta, "wave": wave}


def load_vae(path) -> BetaVAE:
    """Read a VAE written by :func:`save_vae`; its outputs equal the saved one's bit for bit.

    Args:
        path: the VAE file.

    Returns:
        The :class:`~jaxspec.latent.BetaVAE` (use :func:`vae_info` for its wavelengths and metadata).

    Raises:
        ValueError: not a readable HDF5 file, not a VAE file, a format version other than
            :data:`VAE_VERSION` (the message names both), a bad configuration, or missing,
            unexpected or misshapen arrays (the message names them).
    """
    import h5py

    info = vae_info(path)
    try:
        abstract = nnx.eval_shape(lambda: BetaVAE(**info["config"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: bad VAE configuration {info['config']} ({err})") from err
    graphdef, state = nnx.split(abstract)
    with _open(path) as f:
        if not isinstance(f.get("params"), h5py.Group):
            raise ValueError(f"{path}: corrupt VAE file (no /params group)")
        g = f["params"]
        stored = set()
        g.visititems(lambda name, obj: stored.add(name) if isinstance(obj, h5py.Dataset) else None)
        filled, expected = [], set()
        for p, var in nnx.to_flat_state(state):
            name = _name(p)
            expected.add(name)
            if name not in stored:
                raise ValueError(f"{path}: missing VAE array {name!r}")
            arr = g[name][()]
            if arr.shape != tuple(var.shape) or np.asarray(arr).dtype.kind != "f":
                raise ValueError(f"{path}: VAE array {name!r} has shape {arr.shape} and dtype {arr.dtype}; "
                                 f"the configuration needs float {tuple(var.shape)}")
            filled.append((p, var.replace(value=jnp.asarray(arr))))
        extra = sorted(stored - expected)
        if extra:
            raise ValueError(f"{path}: unexpected VAE arrays {extra}")
    return nnx.merge(graphdef, nnx.from_flat_state(filled))
