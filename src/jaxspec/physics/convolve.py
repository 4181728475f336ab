"""'Same'-size convolution of spectra with a short odd-length kernel, edge-padded.

Two methods: ``direct`` (``lax.conv_general_dilated``, float32 at HIGHEST
precision so GPUs do not drop to TF32) and ``fft`` (rfft / irfft at a
2-3-5-smooth length; rounding ~1e-7 of the flux scale in float32). Measured
with jit, float32, median of repeated calls, block_until_ready; times in ms
for one spectrum (B = 1) and a batch, forward pass (the gradient with respect
to the kernel costs 1.5-3x that and follows the same ranking):

    P      K     CPU B=1        CPU B=32        H100 B=1       H100 B=64
                 direct  fft    direct  fft     direct  fft    direct  fft
    8000   61    0.30   0.23     7.2    1.2     0.18   0.26    0.22   0.29
    8000   601   0.82   0.23    14.6    1.4     0.18   0.19    0.71   0.24
    46000  61    1.45   1.14    35.9    8.4     0.18   0.28    0.43   0.27
    46000  601   2.70   1.05    65.8    9.5     0.33   0.30    2.53   0.30

(CPU: the 2-core development machine under other load, jax 0.10.2; H100:
jax 0.11.2, where single spectra are launch-bound at ~0.2 ms either way.)
XLA's CPU convolution is slow, so on CPU ``method="auto"`` always uses the
FFT for K > 1; on GPU / TPU it uses ``direct`` for K <= 31 and the FFT above.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["combine_kernels", "convolve_same"]

# Largest kernel for which method="auto" uses the direct convolution on an
# accelerator (on CPU the FFT is faster for every size we measured).
_AUTO_MAX_DIRECT_ACCEL = 31


def _fft_size(n: int) -> int:
    """Smallest 2-3-5-smooth integer >= n (fast FFT lengths)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _direct(padded, kernel, n_pix):
    lead = padded.shape[:-1]
    x = padded.reshape((-1, 1, padded.shape[-1]))
    # conv_general_dilated is a cross-correlation: flip for a true convolution.
    rhs = kernel[::-1].reshape((1, 1, -1)).astype(x.dtype)
    out = lax.conv_general_dilated(
        x, rhs, window_strides=(1,), padding="VALID", precision=lax.Precision.HIGHEST
    )
    return out.reshape(lead + (n_pix,))


def _fft(padded, kernel, n_pix):
    n_k = kernel.shape[-1]
    n = _fft_size(padded.shape[-1] + n_k - 1)
    spec = jnp.fft.rfft(padded, n=n, axis=-1) * jnp.fft.rfft(kernel, n=n)
    full = jnp.fft.irfft(spec, n=n, axis=-1)
    return full[..., n_k - 1 : n_k - 1 + n_pix].astype(padded.dtype)


def convolve_same(flux, kernel, *, method: str = "auto") -> jax.Array:
    """Convolve spectra with an odd-length kernel, keeping the pixel count.

    ``out[..., i] = sum_k kernel[k] * flux_ext[..., i + h - k]`` with
    ``h = (K - 1) / 2`` and ``flux_ext`` the flux extended by repeating its edge
    values (normalized spectra are ~1 at the edges; zero padding would darken
    them). Equals ``numpy.convolve(edge_padded, kernel, "valid")``.

    Args:
        flux: shape (..., P).
        kernel: shape (K,), K odd, centred on tap ``h`` (may be traced, e.g.
            a function of vsini).
        method: ``"direct"`` (``lax.conv_general_dilated``), ``"fft"``, or
            ``"auto"`` (FFT on CPU; on GPU / TPU direct for K <= 31 and FFT
            above: see the module docstring for the timings behind that).

    Returns:
        shape (..., P), the dtype of ``flux`` (promoted with the kernel's).

    Raises:
        ValueError: if ``kernel`` is not 1-D with odd length, ``flux`` is 0-d,
            or ``method`` is unknown.
    """
    flux = jnp.asarray(flux)
    kernel = jnp.asarray(kernel)
    _check(flux, kernel, method)
    return _convolve_same(flux, kernel, method)


def _check(flux, kernel, method):
    if kernel.ndim != 1 or kernel.shape[0] % 2 != 1:
        raise ValueError(f"kernel must be 1-D with odd length, got shape {kernel.shape}")
    if flux.ndim == 0:
        raise ValueError("flux must have a pixel axis (shape (..., P)), got a scalar")
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    if method == "fft" and jnp.issubdtype(jnp.result_type(flux, kernel), jnp.complexfloating):
        raise ValueError("method='fft' supports real flux only")


@functools.partial(jax.jit, static_argnums=2)
def _convolve_same(flux, kernel, method):
    dtype = jnp.result_type(flux, kernel)
    if not jnp.issubdtype(dtype, jnp.inexact):
        dtype = jnp.zeros(()).dtype
    flux = flux.astype(dtype)
    kernel = kernel.astype(dtype)
    n_k = kernel.shape[0]
    h = (n_k - 1) // 2
    if h == 0:
        return flux * kernel[0]
    n_pix = flux.shape[-1]
    pad = [(0, 0)] * (flux.ndim - 1) + [(h, h)]
    padded = jnp.pad(flux, pad, mode="edge")
    if method == "auto":
        on_cpu = jax.default_backend() == "cpu"
        method = "direct" if n_k <= _AUTO_MAX_DIRECT_ACCEL and not on_cpu else "fft"
    if method == "direct" or jnp.issubdtype(dtype, jnp.complexfloating):
        return _direct(padded, kernel, n_pix)
    return _fft(padded, kernel, n_pix)


def _benchmark(sizes=((8000, 61), (8000, 601), (46000, 61), (46000, 601)), repeat=50):
    """Time both methods (used to fill in the module docstring)."""
    import time

    results = {}
    for n_pix, n_k in sizes:
        flux = jnp.asarray(np.random.default_rng(0).normal(size=n_pix), jnp.float32)
        kernel = jnp.ones(n_k, jnp.float32) / n_k
        for method in ("direct", "fft"):
            f = jax.jit(lambda a, b, m=method: convolve_same(a, b, method=m))
            f(flux, kernel).block_until_ready()
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                f(flux, kernel).block_until_ready()
                times.append(time.perf_counter() - t0)
            results[(n_pix, n_k, method)] = float(np.median(times))
    return results


def combine_kernels(kernel_1, kernel_2) -> jax.Array:
    """Full convolution of two odd-length kernels (one kernel doing both), by FFT.

    XLA's CPU convolution is slow even for a few hundred taps (0.12 ms for
    201 x 131), the FFT route about 10x faster.

    Args:
        kernel_1, kernel_2: shapes (K1,), (K2,), both odd.

    Returns:
        shape (K1 + K2 - 1,), odd, centred.
    """
    k1 = jnp.asarray(kernel_1)
    k2 = jnp.asarray(kernel_2)
    if k1.ndim != 1 or k2.ndim != 1 or k1.shape[0] % 2 != 1 or k2.shape[0] % 2 != 1:
        raise ValueError(f"kernels must be 1-D with odd lengths, got {k1.shape} and {k2.shape}")
    n_out = k1.shape[0] + k2.shape[0] - 1
    n = _fft_size(n_out)
    dtype = jnp.result_type(k1, k2)
    out = jnp.fft.irfft(jnp.fft.rfft(k1, n=n) * jnp.fft.rfft(k2, n=n), n=n)[:n_out]
    return out.astype(dtype)
