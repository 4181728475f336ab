"""Saving, loading and ArviZ conversion of a :class:`~jaxspec.infer.BinaryPosterior`.

HDF5 (``.h5``, ``.hdf5``; h5py): every array field as a dataset, draws under
``samples/<name>``, dicts and lists as JSON attributes. netCDF (``.nc``):
ArviZ's ``InferenceData.to_netcdf`` (posterior, sample_stats,
observed_data), with the other fields in a ``jaxspec`` group as JSON and
arrays. Both read back to an equal object with :func:`load`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

__all__ = ["load", "save", "to_arviz"]

_ARRAYS = ("log_density", "diverging", "num_steps", "tree_depth", "accept_prob", "step_size",
           "warmup_divergences", "chain_mode", "chain_start", "wave", "flux", "ivar", "model_median",
           "model_band", "predictive_band", "model_1", "model_2", "continuum")
_JSON = ("names", "units", "fixed", "modes", "fit_params", "optima", "prior", "settings", "timing")
FORMAT_VERSION = 1


def to_arviz(post):
    """``arviz.InferenceData`` with ``posterior`` (every sampled parameter, (chain, draw)),
    ``sample_stats`` (lp, diverging, n_steps, tree_depth, acceptance_rate, step_size) and
    ``observed_data`` (flux over wavelength).

    Raises:
        ImportError: arviz is not installed (``pip install arviz``).
    """
    try:
        import arviz as az
    except ImportError as e:
        raise ImportError("to_arviz and netCDF files need arviz: pip install arviz") from e
    stats = {"lp": post.log_density, "diverging": post.diverging, "n_steps": post.num_steps,
             "tree_depth": post.tree_depth, "acceptance_rate": post.accept_prob,
             "step_size": np.broadcast_to(post.step_size[:, None], post.log_density.shape)}
    return az.from_dict(
        posterior={n: np.asarray(v) for n, v in post.samples.items()},
        sample_stats=stats,
        observed_data={"flux": post.flux},
        coords={"wave": post.wave},
        dims={"flux": ["wave"]},
        attrs={"units": json.dumps(dict(zip(post.names, post.units, strict=True))), "library": "jaxspec"},
    )


def _meta(post) -> str:
    return json.dumps({"format_version": FORMAT_VERSION,
                       **{k: getattr(post, k) for k in _JSON}}, default=_jsonable)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot store {type(x)}")


def save(post, path) -> None:
    """Write ``post`` to ``path`` (format from the suffix: .h5/.hdf5 or .nc).

    Raises:
        ValueError: unknown suffix. ImportError: .nc without arviz.
    """
    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "w") as f:
            f.attrs["jaxspec_posterior"] = _meta(post)
            for k in _ARRAYS:
                f.create_dataset(k, data=np.asarray(getattr(post, k)))
            g = f.create_group("samples")
            for n, v in post.samples.items():
                g.create_dataset(n, data=np.asarray(v))
        return
    if path.suffix == ".nc":
        idata = to_arviz(post)
        idata.to_netcdf(str(path))
        import h5py  # netCDF4 files are HDF5: add our fields as a group

        with h5py.File(path, "a") as f:
            g = f.create_group("jaxspec")
            g.attrs["jaxspec_posterior"] = _meta(post)
            for k in _ARRAYS:
                g.create_dataset(k, data=np.asarray(getattr(post, k)))
        return
    raise ValueError(f"unknown file type {path.suffix!r}: use .h5, .hdf5 or .nc")


def load(path):
    """Read a posterior written by :func:`save`.

    Raises:
        ValueError: not a jaxspec posterior file or an unknown suffix.
    """
    import h5py

    from jaxspec.infer.posterior import BinaryPosterior

    path = Path(path)
    if path.suffix not in (".h5", ".hdf5", ".nc"):
        raise ValueError(f"unknown file type {path.suffix!r}: use .h5, .hdf5 or .nc")
    with h5py.File(path, "r") as f:
        g = f if path.suffix != ".nc" else f.get("jaxspec")
        if g is None or "jaxspec_posterior" not in g.attrs:
            raise ValueError(f"{path} is not a posterior written by BinaryPosterior.save")
        meta = json.loads(g.attrs["jaxspec_posterior"])
        fields = {k: np.asarray(g[k][()]) for k in _ARRAYS}
        if path.suffix != ".nc":
            samples = {n: np.asarray(f["samples"][n][()]) for n in meta["names"]}
    if path.suffix == ".nc":
        import arviz as az

        idata = az.from_netcdf(str(path))
        samples = {n: np.asarray(idata.posterior[n].values) for n in meta["names"]}
    meta.pop("format_version", None)
    meta["names"], meta["units"], meta["prior"] = (tuple(meta[k]) for k in ("names", "units", "prior"))
    kwargs = {f.name: None for f in dataclasses.fields(BinaryPosterior)}
    kwargs.update(fields, **meta, samples=samples)
    return BinaryPosterior(**kwargs)
