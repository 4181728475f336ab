"""Flax NNX networks of the emulator: scaled labels (n_labels,) -> flux (n_pix,).

Two layouts:

* :class:`MLP`, a plain stack of dense layers (The Payne, Ting et al. 2019):
  every hidden unit sees every label and feeds every pixel.
* :class:`PerPixelNet`, one tiny network per pixel (early Payne and binspec,
  El-Badry et al. 2018): ``flux[p] = w1[p] . act(W0[p] s + b0[p]) + b1[p]``.

Both take ONE scaled label vector (shape (n_labels,)); batching is done by
``jax.vmap`` in one place, :meth:`jaxspec.emulator.Emulator.flux_batch`.

Layout of the per-pixel network: the first layer of all pixels is stored as
one (n_labels, n_hidden * n_pix) matrix, hidden-unit major (column
``h * n_pix + p`` holds the weights of hidden unit ``h`` of pixel ``p``), and
the output weights as (n_hidden, n_pix), so every slice used below is a
contiguous row of pixels. Evaluation depends on the size:

* small networks (``n_labels * n_hidden <= 256``, binspec's is 5 x 5):
  the label contraction and the hidden-unit sum are unrolled into
  elementwise multiply-adds over pixel rows. XLA fuses the whole network
  into ONE loop over (spectrum, pixel), so the (n_spec, n_hidden * n_pix)
  hidden activations never reach memory. Measured on the 2-core CPU, float32,
  binspec's 7214 x 5 x 5 network: 0.05-0.1 ms for one spectrum (as fast as
  the single matrix-vector product DESIGN.md recommends, 0.07 ms, itself 3x
  faster than an ``einsum("pij,j->pi")``), and 10 ms for a batch of 1024,
  against 120 ms for the matrix-product form, whose (1024, 36070) hidden
  activations must be written and read back.
* larger networks: one matrix-vector product ``s @ w0`` (a matrix product
  under ``vmap``), the activation, and a sum over hidden units.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "PerPixelNet",
    "build_network",
    "network_arrays",
    "network_from_arrays",
]

#: Activations by name. ``leaky_relu`` has slope 0.01 below zero (The Payne's).
ACTIVATIONS = {
    "leaky_relu": jax.nn.leaky_relu,
    "sigmoid": jax.nn.sigmoid,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
}


#: Largest n_labels * n_hidden of a PerPixelNet evaluated unrolled (module docstring).
_UNROLL_MAX = 256


def _activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class MLP(nnx.Module):
    """Dense network: scaled labels (n_labels,) -> flux (n_pix,).

    Args:
        n_labels: number of input labels.
        n_pix: number of output pixels.
        hidden: widths of the hidden layers (any depth, may be empty).
        activation: ``"leaky_relu"`` (slope 0.01), ``"sigmoid"``, ``"silu"``
            or ``"tanh"``; applied after every hidden layer, the output is linear.
        rngs: :class:`flax.nnx.Rngs` for the initial weights.
        param_dtype: dtype of the weights (default float32).

    Parameters (``nnx.state`` paths): ``layers/<i>/kernel`` (n_in, n_out) and
    ``layers/<i>/bias`` (n_out,), the last layer being the output layer.

    Raises:
        ValueError: non-positive sizes or an unknown activation.
    """

    def __init__(
        self,
        n_labels: int,
        n_pix: int,
        hidden=(300, 300),
        activation: str = "leaky_relu",
        *,
        rngs: nnx.Rngs,
        param_dtype=jnp.float32,
    ):
        self.n_labels = _positive_int(n_labels, "n_labels")
        self.n_pix = _positive_int(n_pix, "n_pix")
        self.hidden = tuple(_positive_int(h, "hidden width") for h in hidden)
        self.activation = activation
        self._act = _activation(activation)
        sizes = (self.n_labels, *self.hidden, self.n_pix)
        self.layers = nnx.List(
            nnx.Linear(a, b, rngs=rngs, param_dtype=param_dtype)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )

    @property
    def architecture(self) -> dict:
        """JSON-able description from which :func:`build_network` rebuilds this network."""
        return {
            "kind": "mlp",
            "n_labels": self.n_labels,
            "n_pix": self.n_pix,
            "hidden": list(self.hidden),
            "activation": self.activation,
        }

    def restrict(self, start: int, stop: int) -> MLP:
        """A copy that outputs only pixels ``start:stop`` (the output layer's columns sliced)."""
        new = MLP(self.n_labels, stop - start, self.hidden, self.activation, rngs=nnx.Rngs(0),
                  param_dtype=self.layers[-1].kernel[...].dtype)
        for mine, theirs in zip(self.layers[:-1], new.layers[:-1], strict=True):
            theirs.kernel[...] = mine.kernel[...]
            theirs.bias[...] = mine.bias[...]
        new.layers[-1].kernel[...] = self.layers[-1].kernel[...][:, start:stop]
        new.layers[-1].bias[...] = self.layers[-1].bias[...][start:stop]
        return new

    def __call__(self, x):
        """Flux (n_pix,) for scaled labels ``x`` (n_labels,)."""
        for layer in self.layers[:-1]:
            x = self._act(layer(x))
        return self.layers[-1](x)


class PerPixelNet(nnx.Module):
    """One small network per pixel: scaled labels (n_labels,) -> flux (n_pix,).

    ``flux[p] = b1[p] + sum_h w1[h, p] act(sum_i s[i] w0[i, h * n_pix + p] + b0[h * n_pix + p])``

    Args:
        n_labels: number of input labels.
        n_pix: number of pixels (one network each).
        n_hidden: hidden units per pixel.
        activation: as for :class:`MLP`; ``"sigmoid"`` (binspec's) by default.
        rngs: :class:`flax.nnx.Rngs` for the initial weights.
        param_dtype: dtype of the weights (default float32).

    Parameters: ``w0`` (n_labels, n_hidden * n_pix), ``b0`` (n_hidden * n_pix,),
    hidden-unit major (index ``h * n_pix + p``); ``w1`` (n_hidden, n_pix);
    ``b1`` (n_pix,). binspec's arrays map to them by
    ``w0 = w_array_0.transpose(2, 1, 0).reshape(n_labels, -1)``,
    ``b0 = b_array_0.T.reshape(-1)``, ``w1 = w_array_1.T``, ``b1 = b_array_1``.

    Raises:
        ValueError: non-positive sizes or an unknown activation.
    """

    def __init__(
        self,
        n_labels: int,
        n_pix: int,
        n_hidden: int,
        activation: str = "sigmoid",
        *,
        rngs: nnx.Rngs,
        param_dtype=jnp.float32,
    ):
        self.n_labels = _positive_int(n_labels, "n_labels")
        self.n_pix = _positive_int(n_pix, "n_pix")
        self.n_hidden = _positive_int(n_hidden, "n_hidden")
        self.activation = activation
        self._act = _activation(activation)
        width = self.n_pix * self.n_hidden
        # LeCun-normal per pixel network (fan-in n_labels, then n_hidden).
        init = jax.nn.initializers.lecun_normal(in_axis=0, out_axis=1)
        self.w0 = nnx.Param(init(rngs.params(), (self.n_labels, width), param_dtype))
        self.b0 = nnx.Param(jnp.zeros((width,), param_dtype))
        self.w1 = nnx.Param(init(rngs.params(), (self.n_hidden, self.n_pix), param_dtype))
        self.b1 = nnx.Param(jnp.zeros((self.n_pix,), param_dtype))

    @property
    def architecture(self) -> dict:
        """JSON-able description from which :func:`build_network` rebuilds this network."""
        return {
            "kind": "per_pixel",
            "n_labels": self.n_labels,
            "n_pix": self.n_pix,
            "n_hidden": self.n_hidden,
            "activation": self.activation,
        }

    def restrict(self, start: int, stop: int) -> PerPixelNet:
        """A copy holding only the networks of pixels ``start:stop``."""
        n_lab, n_hid, n_pix = self.n_labels, self.n_hidden, self.n_pix
        new = PerPixelNet(n_lab, stop - start, n_hid, self.activation, rngs=nnx.Rngs(0),
                          param_dtype=self.w1[...].dtype)
        new.w0[...] = self.w0[...].reshape(n_lab, n_hid, n_pix)[..., start:stop].reshape(n_lab, -1)
        new.b0[...] = self.b0[...].reshape(n_hid, n_pix)[:, start:stop].reshape(-1)
        new.w1[...] = self.w1[...][:, start:stop]
        new.b1[...] = self.b1[...][start:stop]
        return new

    def __call__(self, x):
        """Flux (n_pix,) for scaled labels ``x`` (n_labels,)."""
        n_lab, n_hid, n_pix = self.n_labels, self.n_hidden, self.n_pix
        w1, b1 = self.w1[...], self.b1[...]
        if n_lab * n_hid <= _UNROLL_MAX:
            # Elementwise over pixel rows: XLA fuses this into one loop (module docstring).
            w0 = self.w0[...].reshape(n_lab, n_hid, n_pix)
            b0 = self.b0[...].reshape(n_hid, n_pix)
            out = b1
            for h in range(n_hid):
                z = b0[h]
                for i in range(n_lab):
                    z = z + x[i] * w0[i, h]
                out = out + w1[h] * self._act(z)
            return out
        z = (x @ self.w0[...] + self.b0[...]).reshape(n_hid, n_pix)
        return jnp.sum(self._act(z) * w1, axis=0) + b1


def build_network(architecture: dict, *, rngs: nnx.Rngs, param_dtype=jnp.float32) -> nnx.Module:
    """Build the network an ``architecture`` dict (``network.architecture``) describes.

    Raises:
        ValueError: unknown ``kind``, missing or invalid entries.
    """
    if not isinstance(architecture, dict):
        raise ValueError(f"architecture must be a dict, got {type(architecture).__name__}")
    kind = architecture.get("kind")
    try:
        if kind == "mlp":
            return MLP(
                architecture["n_labels"],
                architecture["n_pix"],
                tuple(architecture["hidden"]),
                architecture["activation"],
                rngs=rngs,
                param_dtype=param_dtype,
            )
        if kind == "per_pixel":
            return PerPixelNet(
                architecture["n_labels"],
                architecture["n_pix"],
                architecture["n_hidden"],
                architecture["activation"],
                rngs=rngs,
                param_dtype=param_dtype,
            )
    except KeyError as err:
        raise ValueError(f"architecture of kind {kind!r} lacks the entry {err.args[0]!r}") from None
    except TypeError as err:
        raise ValueError(f"invalid architecture {architecture!r}: {err}") from None
    raise ValueError(f"unknown network kind {kind!r}; expected 'mlp' or 'per_pixel'")


def _path_name(path) -> str:
    return "/".join(str(k) for k in path)


def network_arrays(network: nnx.Module) -> dict[str, np.ndarray]:
    """Every parameter of ``network`` as numpy, keyed by its ``nnx.state`` path (``"layers/0/kernel"``)."""
    return {
        _path_name(path): np.asarray(var[...])
        for path, var in nnx.to_flat_state(nnx.state(network))
    }


def network_from_arrays(architecture: dict, arrays: dict, *, source: str = "arrays", build=None) -> nnx.Module:
    """Build the network ``architecture`` describes, with its parameters taken from ``arrays``.

    Args:
        architecture: as returned by ``network.architecture``.
        build: optional ``build(architecture, rngs=...) -> nnx.Module`` for networks other
            than the emulator's (default :func:`build_network`).
        arrays: parameter name (as in :func:`network_arrays`) -> array of the
            exact shape the architecture implies. The arrays' dtypes are kept,
            so a save/load round trip is bit-identical.
        source: what to call ``arrays`` in error messages (a file name).

    Raises:
        ValueError: an invalid architecture, a missing or unexpected parameter,
            a wrong shape, or a non-floating dtype, naming the parameter.
    """
    # Shapes only: no random initialization of weights that are overwritten anyway.
    build = build_network if build is None else build
    abstract = nnx.eval_shape(lambda: build(architecture, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    filled = []
    expected = set()
    for path, var in nnx.to_flat_state(state):
        name = _path_name(path)
        expected.add(name)
        if name not in arrays:
            raise ValueError(f"{source}: missing network parameter {name!r}")
        arr = np.asarray(arrays[name])
        if arr.shape != tuple(var.shape):
            raise ValueError(
                f"{source}: network parameter {name!r} has shape {arr.shape}; the architecture "
                f"{architecture} needs {tuple(var.shape)}"
            )
        if arr.dtype.kind != "f":
            raise ValueError(f"{source}: network parameter {name!r} has non-floating dtype {arr.dtype}")
        filled.append((path, var.replace(value=jnp.asarray(arr))))
    extra = sorted(set(arrays) - expected)
    if extra:
        raise ValueError(f"{source}: unexpected network parameters {extra} for architecture {architecture}")
    return nnx.merge(graphdef, nnx.from_flat_state(filled))
