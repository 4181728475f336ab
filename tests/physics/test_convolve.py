"""Edge-padded 'same' convolution: both methods against numpy, batching, vmap, grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxspec.physics import convolve_same


def _reference(flux, kernel):
    h = (kernel.size - 1) // 2
    return np.convolve(np.pad(flux, h, mode="edge"), kernel, mode="valid")


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
@pytest.mark.parametrize("n_k", [1, 3, 41])
def test_matches_numpy(method, n_k):
    rng = np.random.default_rng(n_k)
    flux = 1.0 + rng.normal(0, 0.1, (2, 3, 120))
    kernel = rng.random(n_k)  # asymmetric: catches a missing kernel flip
    out = np.asarray(convolve_same(flux, kernel, method=method))
    assert out.shape == flux.shape
    ref = np.stack([[_reference(f, kernel) for f in row] for row in flux])
    np.testing.assert_allclose(out, ref, rtol=2e-6 * n_k, atol=2e-6 * n_k)


def test_edges_are_not_darkened():
    out = convolve_same(jnp.ones(50), jnp.ones(21) / 21.0)
    np.testing.assert_allclose(np.asarray(out), 1.0, atol=1e-6)


def test_vmap_over_kernels_and_grad():
    rng = np.random.default_rng(0)
    flux = jnp.asarray(rng.random(64))
    kernels = jnp.asarray(rng.random((4, 9)))
    for method in ("direct", "fft"):
        out = jax.vmap(lambda k, m=method: convolve_same(flux, k, method=m))(kernels)
        ref = np.stack([_reference(np.asarray(flux), np.asarray(k)) for k in kernels])
        np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)
        g = jax.grad(lambda k, m=method: jnp.sum(convolve_same(flux, k, method=m) ** 2))(kernels[0])
        assert g.shape == (9,) and jnp.all(jnp.isfinite(g))


def test_errors():
    with pytest.raises(ValueError, match="odd"):
        convolve_same(jnp.ones(10), jnp.ones(4))
    with pytest.raises(ValueError, match="odd"):
        convolve_same(jnp.ones(10), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="pixel axis"):
        convolve_same(1.0, jnp.ones(3))
    with pytest.raises(ValueError, match="method"):
        convolve_same(jnp.ones(10), jnp.ones(3), method="magic")
