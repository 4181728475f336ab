"""The neural spectral emulator: stellar labels -> normalized spectrum (The Payne).

:class:`Emulator` wraps a Flax NNX network (:mod:`jaxspec.emulator.networks`)
with what is needed to use it as a spectral model: label names and bounds,
the label scaling the network was trained with, an optional flux scaling, the
model wavelength grid and a policy for labels outside the training range. It
satisfies :class:`jaxspec.spectral_model.SpectralModel`.

Label scaling (binspec's and The Payne's convention)::

    s = (labels - x_min) / (x_max - x_min) - 0.5
    flux = network(s) * flux_scale + flux_offset

Files: :meth:`Emulator.from_payne` and :meth:`Emulator.from_binspec` import
published npz networks; :meth:`Emulator.save` / :meth:`Emulator.load` use
HDF5 with no pickles (schema in :mod:`jaxspec.emulator.io`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxspec.physics.grid import check_wavelengths
from jaxspec.spectral_model import check_labels

__all__ = ["Emulator", "RANGE_POLICIES"]

#: Allowed values of ``Emulator.range_policy``.
RANGE_POLICIES = ("extrapolate", "clip", "raise")


class _Static:
    """Metadata of an emulator that is not traced (pytree aux data).

    Compared by identity: two emulators share a compiled function only when
    they share this object (copies made by JAX's tree_unflatten do). Cheaper
    and safer than comparing wavelength arrays on every jit dispatch.
    """

    __slots__ = ("label_names", "label_bounds", "wave", "architecture", "range_policy")

    def __init__(self, label_names, label_bounds, wave, architecture, range_policy):
        self.label_names = label_names
        self.label_bounds = label_bounds
        self.wave = wave
        self.architecture = architecture
        self.range_policy = range_policy


def _concrete(x) -> np.ndarray | None:
    """``x`` as float64 numpy when it has a value now, ``None`` under a JAX transformation."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x, dtype=np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _vector(value, n: int, name: str) -> np.ndarray:
    a = np.asarray(value)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
    if a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite real numbers, got {a}")
    return a


@jax.tree_util.register_pytree_node_class
class Emulator:
    """Neural-network spectral model: labels (n_labels,) -> normalized flux (n_pix,).

    Args:
        network: a :class:`~jaxspec.emulator.networks.MLP` or
            :class:`~jaxspec.emulator.networks.PerPixelNet` (any NNX module
            with an ``architecture`` dict and ``n_labels``/``n_pix`` inputs and
            outputs) mapping scaled labels to flux. Its parameters are copied
            (``nnx.split``); later changes to ``network`` do not reach the emulator.
        x_min, x_max: (n_labels,) label scaling, in label units; ``x_max > x_min``.
        label_names: names of the labels in input order (``"teff"`` [K],
            ``"logg"``, ``"feh"``, ``"<x>_fe"``, ``"vmacro"`` [km/s], ...).
        wave: (n_pix,) vacuum wavelengths [A] of the output pixels.
        label_bounds: (n_labels, 2) validity range of the labels; default
            ``[x_min, x_max]`` (the training range for Payne-style networks).
        flux_offset, flux_scale: scalar or (n_pix,); ``flux = network(s) *
            flux_scale + flux_offset`` (defaults 0 and 1).
        range_policy: what :meth:`flux` does with labels outside ``label_bounds``:

            * ``"extrapolate"`` (default): evaluate the network as it is
              (binspec's and The Payne's behaviour). It is the default because
              it keeps the model a smooth function with informative gradients
              everywhere: bounds belong to the parameter layer (bounded
              transforms, priors) of a fit, and a fitter or sampler that steps
              briefly outside the box must still see which way is back.
              Clipping would flatten the model there (zero gradient: a
              Levenberg-Marquardt Jacobian loses rank, HMC drifts on a
              plateau). Use :meth:`in_range` to flag results outside the box.
            * ``"clip"``: clip each label to its bounds first (the spectrum
              at the nearest edge of the box; zero gradient outside).
            * ``"raise"``: for concrete labels (eager calls), raise
              ``ValueError`` naming the label and its bounds. Under ``jit``,
              ``vmap`` or ``grad`` the labels have no value to check, so an
              out-of-range label vector gives a spectrum of NaN instead (a
              loud failure that a fitter rejects as a bad step; gradients of
              in-range spectra are unaffected).

            Non-finite labels raise ``ValueError`` whenever they are concrete,
            under any policy.

    Raises:
        ValueError: inconsistent sizes (label names vs network inputs, wave vs
            network outputs), non-finite or unsorted wavelengths, bad scaling,
            bounds or policy, non-finite network parameters.

    Using it under ``jit``: ``jax.jit(emulator.flux)`` and
    ``jax.jit(jax.vmap(emulator.flux))`` work (the weights become compile-time
    constants). The emulator is also a pytree (weights and scalings are its
    leaves; names, bounds, grid, architecture and policy are static), so
    ``jax.jit(lambda em, x: em.flux(x))(emulator, x)`` passes the weights as
    arguments: this is the form to use when differentiating with respect to
    the weights (training). Static metadata is compared by identity, so a
    second call with the same emulator (or a copy JAX made of it) and
    same-shaped labels reuses the compiled function, while another emulator
    object compiles once more.
    """

    def __init__(
        self,
        network: nnx.Module,
        x_min,
        x_max,
        *,
        label_names,
        wave,
        label_bounds=None,
        flux_offset=0.0,
        flux_scale=1.0,
        range_policy: str = "extrapolate",
    ):
        arch = getattr(network, "architecture", None)
        if not isinstance(arch, dict):
            raise ValueError("network must be an NNX module with an `architecture` dict (see networks.py)")
        n_labels, n_pix = int(arch["n_labels"]), int(arch["n_pix"])
        label_names = tuple(label_names)
        if not all(isinstance(n, str) and n for n in label_names):
            raise ValueError(f"label_names must be non-empty strings, got {label_names}")
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"label_names has duplicates: {label_names}")
        if len(label_names) != n_labels:
            raise ValueError(
                f"{len(label_names)} label_names {label_names} for a network with {n_labels} inputs"
            )
        wave = check_wavelengths(wave, "wave")
        if wave.size != n_pix:
            raise ValueError(f"wave has {wave.size} pixels but the network outputs {n_pix}")

        graphdef, params = nnx.split(network)
        leaves = jax.tree_util.tree_leaves(params)
        dtype = jnp.result_type(leaves[0]) if leaves else jnp.result_type(float)
        names = [("/".join(map(str, p)), v[...]) for p, v in nnx.to_flat_state(params)]
        for name, value in names:
            if not np.all(np.isfinite(np.asarray(value))):
                raise ValueError(f"network parameter {name!r} is not finite")

        x_min = _vector(x_min, n_labels, "x_min")
        x_max = _vector(x_max, n_labels, "x_max")
        if np.any(x_max <= x_min):
            i = int(np.argmax(x_max <= x_min))
            raise ValueError(
                f"x_max must exceed x_min; label {label_names[i]!r} has [{x_min[i]}, {x_max[i]}]"
            )
        if label_bounds is None:
            bounds = np.stack([x_min, x_max], axis=1).astype(np.float64)
        else:
            bounds = np.array(label_bounds, dtype=np.float64)
            if bounds.shape != (n_labels, 2):
                raise ValueError(f"label_bounds must have shape ({n_labels}, 2), got {bounds.shape}")
            bad = ~(np.isfinite(bounds).all(axis=1) & (bounds[:, 0] < bounds[:, 1]))
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"label_bounds of {label_names[i]!r} must be finite with lo < hi, got {bounds[i]}"
                )
        scal = []
        for name, v in (("flux_offset", flux_offset), ("flux_scale", flux_scale)):
            a = np.asarray(v)
            if a.shape not in ((), (n_pix,)) or a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)):
                raise ValueError(f"{name} must be a finite scalar or have shape ({n_pix},); got {a.shape}")
            scal.append(a)
        _check_policy(range_policy)
        for a in (wave, bounds):
            a.setflags(write=False)

        self._graphdef = graphdef
        self._params = params
        self._x_min = jnp.asarray(x_min, dtype)
        self._x_max = jnp.asarray(x_max, dtype)
        self._flux_offset = jnp.asarray(scal[0], dtype)
        self._flux_scale = jnp.asarray(scal[1], dtype)
        self._static = _Static(label_names, bounds, wave, dict(arch), range_policy)

    # ----------------------------------------------------------------- pytree

    def tree_flatten(self):
        """JAX pytree protocol: ``(children, aux)``.

        The children (traced leaves) are the network parameters, ``x_min``,
        ``x_max``, ``flux_offset`` and ``flux_scale``; the aux data (static,
        compared by identity) are the graph definition and the metadata
        (label names and bounds, wavelength grid, architecture, range policy).
        """
        children = (self._params, self._x_min, self._x_max, self._flux_offset, self._flux_scale)
        return children, (self._graphdef, self._static)

    @classmethod
    def tree_unflatten(cls, aux, children):
        """JAX pytree protocol: rebuild an emulator from :meth:`tree_flatten`'s output.

        Args:
            aux: the static ``(graphdef, metadata)`` pair.
            children: the leaves, in :meth:`tree_flatten`'s order (arrays,
                tracers or placeholders).

        Returns:
            An :class:`Emulator` sharing ``aux`` (so compiled functions are
            reused); nothing is validated.
        """
        # No validation: JAX unflattens with tracers or placeholders as leaves.
        obj = object.__new__(cls)
        obj._graphdef, obj._static = aux
        obj._params, obj._x_min, obj._x_max, obj._flux_offset, obj._flux_scale = children
        return obj

    # ------------------------------------------------------------- attributes

    @property
    def label_names(self) -> tuple[str, ...]:
        """Label names in the order :meth:`flux` expects them."""
        return self._static.label_names

    @property
    def label_bounds(self) -> np.ndarray:
        """(n_labels, 2) float64 validity range of the labels (read-only)."""
        return self._static.label_bounds

    @property
    def wave(self) -> np.ndarray:
        """(n_pix,) float64 vacuum wavelengths [A] of the output (read-only)."""
        return self._static.wave

    @property
    def architecture(self) -> dict:
        """Network description (``kind``: ``"mlp"`` or ``"per_pixel"``, sizes, activation)."""
        return dict(self._static.architecture)

    @property
    def range_policy(self) -> str:
        """``"extrapolate"``, ``"clip"`` or ``"raise"``; see the class docstring."""
        return self._static.range_policy

    @range_policy.setter
    def range_policy(self, policy: str) -> None:
        _check_policy(policy)
        s = self._static
        self._static = _Static(s.label_names, s.label_bounds, s.wave, s.architecture, policy)

    @property
    def network(self) -> nnx.Module:
        """A copy of the NNX network (``nnx.merge`` of the stored graph and parameters)."""
        return nnx.merge(self._graphdef, self._params)

    @property
    def params(self) -> nnx.State:
        """The network parameters (an ``nnx.State``)."""
        return self._params

    @property
    def x_min(self):
        """(n_labels,) lower end of the label scaling."""
        return self._x_min

    @property
    def x_max(self):
        """(n_labels,) upper end of the label scaling."""
        return self._x_max

    @property
    def flux_offset(self):
        """Scalar or (n_pix,) offset added to the network output, in the output's flux units."""
        return self._flux_offset

    @property
    def flux_scale(self):
        """Scalar or (n_pix,) factor on the network output: ``flux = network * flux_scale + flux_offset``."""
        return self._flux_scale

    @property
    def dtype(self):
        """Floating dtype of the network parameters; labels are cast to it."""
        return self._x_min.dtype

    @property
    def n_labels(self) -> int:
        """Number of labels L (network inputs)."""
        return len(self._static.label_names)

    @property
    def n_pix(self) -> int:
        """Number of output pixels P (the size of :attr:`wave`)."""
        return self._static.wave.size

    def __repr__(self) -> str:
        a = self._static.architecture
        w = self._static.wave
        return (
            f"Emulator({a['kind']} {a}, {w.size} pixels {w[0]:.1f}-{w[-1]:.1f} A, "
            f"labels={self.label_names}, range_policy={self.range_policy!r}, dtype={self.dtype})"
        )

    # ---------------------------------------------------------------- ranges

    def in_range(self, labels):
        """Whether each label vector lies inside ``label_bounds`` (inclusive).

        Args:
            labels: (n_labels,) or (n_spec, n_labels) in the order of
                :attr:`label_names`, in label units (teff [K], logg and feh
                [dex], ...).

        Returns:
            bool, shape () or (n_spec,): a numpy array when ``labels`` is
            concrete (compared in float64), a JAX array under a transformation.
            Non-finite labels are out of range.

        Raises:
            ValueError: wrong number of labels.
        """
        check_labels(labels, self.label_names)
        lo, hi = self.label_bounds[:, 0], self.label_bounds[:, 1]
        c = _concrete(labels)
        if c is not None:
            return np.all((c >= lo) & (c <= hi), axis=-1)
        x = jnp.asarray(labels)
        return jnp.all((x >= jnp.asarray(lo, x.dtype)) & (x <= jnp.asarray(hi, x.dtype)), axis=-1)

    def _check_concrete(self, labels: np.ndarray) -> None:
        """Non-finite labels always, out-of-range ones under ``"raise"``; ``labels`` (n, L) float64."""
        batch = labels.shape[0] > 1
        bad = ~np.isfinite(labels)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            where = f" (spectrum {i})" if batch else ""
            raise ValueError(f"label {self.label_names[j]!r} is not finite: {labels[i, j]}{where}")
        if self.range_policy != "raise":
            return
        lo, hi = self.label_bounds[:, 0], self.label_bounds[:, 1]
        out = (labels < lo) | (labels > hi)
        if out.any():
            i, j = np.argwhere(out)[0]
            where = f" (spectrum {i})" if batch else ""
            raise ValueError(
                f"label {self.label_names[j]!r} = {labels[i, j]:g}{where} lies outside its bounds "
                f"[{lo[j]:g}, {hi[j]:g}] and range_policy='raise'; use 'clip' or 'extrapolate' "
                "to evaluate it anyway"
            )

    # ------------------------------------------------------------------ flux

    def _flux(self, labels):
        """Flux (n_pix,) for one label vector (n_labels,) of dtype ``self.dtype``; policy applied."""
        policy = self.range_policy
        if policy != "extrapolate":
            bounds = jnp.asarray(self.label_bounds, labels.dtype)
            lo, hi = bounds[:, 0], bounds[:, 1]
        if policy == "clip":
            labels = jnp.clip(labels, lo, hi)
        s = (labels - self._x_min) / (self._x_max - self._x_min) - 0.5
        out = nnx.merge(self._graphdef, self._params)(s)
        out = out * self._flux_scale + self._flux_offset
        if policy == "raise":
            inside = jnp.all((labels >= lo) & (labels <= hi))
            out = jnp.where(inside, out, jnp.nan)
        return out

    def flux(self, labels):
        """Normalized flux for one label vector.

        Args:
            labels: (n_labels,) in the order of ``label_names``, in label
                units (teff [K], logg and feh [dex], vmacro [km/s], ...); cast
                to :attr:`dtype`.

        Returns:
            (n_pix,) flux on :attr:`wave` (continuum-normalized, unless the
            network predicts unnormalized flux). Labels outside ``label_bounds``
            are handled by :attr:`range_policy`.

        Raises:
            ValueError: wrong number of labels, a batch (use :meth:`flux_batch`),
                or, for concrete labels, a non-finite label or (policy
                ``"raise"``) one outside its bounds.
        """
        check_labels(labels, self.label_names)
        if np.ndim(labels) != 1:
            raise ValueError(
                f"flux takes one label vector of shape ({self.n_labels},); "
                f"use flux_batch for shape {np.shape(labels)}"
            )
        c = _concrete(labels)
        if c is not None:
            self._check_concrete(c[None])
        return self._flux(jnp.asarray(labels, self.dtype))

    def flux_batch(self, labels):
        """Normalized flux (n_spec, n_pix) for label vectors (n_spec, n_labels).

        ``jax.vmap`` of :meth:`flux`: the per-pixel network's first layer
        becomes one (n_spec, n_labels) x (n_labels, n_pix * n_hidden) product.

        Args:
            labels: (n_spec, n_labels) in the order of ``label_names``, in
                label units (teff [K], logg and feh [dex], ...).

        Returns:
            (n_spec, n_pix) flux on :attr:`wave` (continuum-normalized, unless
            the network predicts unnormalized flux).

        Raises:
            ValueError: as :meth:`flux`; the message names the offending spectrum.
        """
        check_labels(labels, self.label_names)
        if np.ndim(labels) != 2:
            raise ValueError(
                f"flux_batch takes labels of shape (n_spec, {self.n_labels}); got {np.shape(labels)}"
            )
        c = _concrete(labels)
        if c is not None:
            self._check_concrete(c)
        return jax.vmap(self._flux)(jnp.asarray(labels, self.dtype))

    def restrict(self, start: int, stop: int) -> Emulator:
        """The same emulator on the pixels ``wave[start:stop]`` only.

        The output layer (or the per-pixel networks) is sliced, so evaluating
        it costs less in proportion; the flux on those pixels is unchanged.
        The binary model uses this to evaluate only the part of the model grid
        that the observed pixels need.

        Args:
            start, stop: pixel slice of :attr:`wave` to keep.

        Returns:
            A new :class:`Emulator` with ``stop - start`` pixels.

        Raises:
            ValueError: unless ``0 <= start < stop <= n_pix`` with at least 2 pixels.
            NotImplementedError: the network has no ``restrict`` method (a
                custom NNX module); the binary model then slices the flux.
        """
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= self.n_pix or stop - start < 2:
            raise ValueError(f"restrict needs 0 <= start < stop <= {self.n_pix} with >= 2 pixels, "
                             f"got {start}:{stop}")
        restrict = getattr(self.network, "restrict", None)
        if restrict is None:
            raise NotImplementedError(f"network {type(self.network).__name__} has no restrict method")

        def cut(a):
            a = np.asarray(a)
            return a if a.ndim == 0 else a[start:stop]

        return Emulator(restrict(start, stop), np.asarray(self._x_min), np.asarray(self._x_max),
                        label_names=self.label_names, wave=self.wave[start:stop],
                        label_bounds=self.label_bounds, flux_offset=cut(self._flux_offset),
                        flux_scale=cut(self._flux_scale), range_policy=self.range_policy)

    # ----------------------------------------------------------------- files

    @classmethod
    def from_payne(cls, path, label_names, wave, **kwargs) -> Emulator:
        """Import a network in The Payne's npz layout; see :func:`jaxspec.emulator.io.from_payne`.

        Args:
            path: the ``.npz`` file.
            label_names: names of the network's inputs, in order.
            wave: (P,) vacuum wavelengths [A] of its outputs.
            **kwargs: ``label_bounds``, ``flux_offset``, ``flux_scale``,
                ``range_policy``, ``dtype`` (as :func:`~jaxspec.emulator.io.from_payne`).
        """
        from jaxspec.emulator.io import from_payne

        return from_payne(path, label_names, wave, **kwargs)

    @classmethod
    def from_binspec(cls, path, label_names, wave, **kwargs) -> Emulator:
        """Import a binspec per-pixel npz network; see :func:`jaxspec.emulator.io.from_binspec`.

        Args:
            path: the ``.npz`` file.
            label_names: names of the network's inputs, in order.
            wave: (P,) vacuum wavelengths [A] of its outputs.
            **kwargs: ``label_bounds``, ``flux_offset``, ``flux_scale``,
                ``range_policy``, ``dtype`` (as :func:`~jaxspec.emulator.io.from_binspec`).
        """
        from jaxspec.emulator.io import from_binspec

        return from_binspec(path, label_names, wave, **kwargs)

    def save(self, path) -> None:
        """Write to HDF5 (no pickles); see :func:`jaxspec.emulator.io.save`.

        Args:
            path: output file.
        """
        from jaxspec.emulator.io import save

        save(self, path)

    @classmethod
    def load(cls, path) -> Emulator:
        """Read a file written by :meth:`save`; see :func:`jaxspec.emulator.io.load`.

        Args:
            path: an emulator HDF5 file.
        """
        from jaxspec.emulator.io import load

        return load(path)


def _check_policy(policy) -> None:
    if policy not in RANGE_POLICIES:
        raise ValueError(f"range_policy must be one of {RANGE_POLICIES}, got {policy!r}")
