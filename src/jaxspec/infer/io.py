"""Saving, loading and ArviZ conversion of a :class:`~jaxspec.infer.BinaryPosterior`.

HDF5 (``.h5``, ``.hdf5``; h5py): every array field as a dataset, draws under
``samples/<name>``, dicts and lists as JSON attributes. netCDF (``.nc``):
ArviZ's ``InferenceData.to_netcdf`` (posterior, sample_stats,
observed_data) plus a ``jaxspec`` group holding the other arrays, with the
remaining fields as a JSON attribute. Both read back to an equal object with :func:`load`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

__all__ = ["load", "save", "to_arviz"]

_ARRAYS = ("log_density", "diverging", "num_steps", "tree_depth", "accept_prob", "step_size",
           "warmup_divergences", "warmup_steps", "chain_mode", "chain_start", "draw_mode", "jumped",
           "wave", "flux", "ivar", "model_median",
           "model_band", "predictive_band", "model_1", "model_2", "continuum")
_JSON = ("names", "units", "fixed", "modes", "fit_params", "optima", "prior", "settings", "timing")
FORMAT_VERSION = 2  # 2: draw_mode and jumped (version-1 files read back without mode jumps)
_OPTIONAL = ("draw_mode", "jumped")


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
        import warnings

        import xarray as xr

        idata = to_arviz(post)
        arrays = {k: np.asarray(getattr(post, k)) for k in _ARRAYS}
        ds = xr.Dataset({k: (tuple(f"{k}_dim_{i}" for i in range(a.ndim)), a) for k, a in arrays.items()},
                        attrs={"jaxspec_posterior": _meta(post)})
        with warnings.catch_warnings():  # "jaxspec" is not one of ArviZ's standard group names
            warnings.simplefilter("ignore")
            idata.add_groups({"jaxspec": ds})
        idata.to_netcdf(str(path))
        return
    raise ValueError(f"unknown file type {path.suffix!r}: use .h5, .hdf5 or .nc")


def load(path):
    """Read a posterior written by :func:`save`.

    Raises:
        ValueError: not a jaxspec posterior file or an unknown suffix.
    """
    from jaxspec.infer.posterior import BinaryPosterior

    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            if "jaxspec_posterior" not in f.attrs:
                raise ValueError(f"{path} is not a posterior written by BinaryPosterior.save")
            meta = json.loads(f.attrs["jaxspec_posterior"])
            fields = {k: np.asarray(f[k][()]) for k in _ARRAYS if k in f}
            samples = {n: np.asarray(f["samples"][n][()]) for n in meta["names"]}
    elif path.suffix == ".nc":
        import arviz as az

        idata = az.from_netcdf(str(path))
        g = getattr(idata, "jaxspec", None)
        if g is None or "jaxspec_posterior" not in g.attrs:
            raise ValueError(f"{path} is not a posterior written by BinaryPosterior.save")
        meta = json.loads(g.attrs["jaxspec_posterior"])
        fields = {k: np.asarray(g[k].values) for k in _ARRAYS if k in g}
        samples = {n: np.asarray(idata.posterior[n].values) for n in meta["names"]}
    else:
        raise ValueError(f"unknown file type {path.suffix!r}: use .h5, .hdf5 or .nc")
    meta.pop("format_version", None)
    missing = [k for k in _ARRAYS if k not in fields and k not in _OPTIONAL]
    if missing:
        raise ValueError(f"{path} lacks {missing}: not a complete posterior file")
    shape = fields["log_density"].shape
    fields.setdefault("draw_mode", np.full(shape, -1, dtype=np.int64))
    fields.setdefault("jumped", np.zeros(shape, dtype=bool))
    meta["names"], meta["units"], meta["prior"] = (tuple(meta[k]) for k in ("names", "units", "prior"))
    kwargs = {f.name: None for f in dataclasses.fields(BinaryPosterior)}
    kwargs.update(fields, **meta, samples=samples)
    return BinaryPosterior(**kwargs)
