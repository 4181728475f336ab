"""Shared fixtures of the sampler tests: the toy spectral model of ``benchmarks/bench_calibration.py``
(40 analytic lines, about a hundredth of the default emulator's cost) and one sampled posterior."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_bench(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def calib():
    return load_bench("bench_calibration")


TRUTH = {"teff_1": 5900.0, "logg_1": 4.4, "teff_2": 5000.0, "logg_2": 4.7, "feh": -0.3, "rv_1": -30.0,
         "rv_2": 35.0, "vsini_1": 10.0, "vsini_2": 6.0, "flux_ratio": 0.5}


@pytest.fixture(scope="session")
def toy(calib):
    """``(model, wave, bm, options)`` of the toy setup."""
    from jaxspec.fit.binary import _get_fitter, _options

    model, wave, resolution, opts = calib.setup("toy")
    bm = _get_fitter(model, wave, resolution, _options(model, **opts), None).bm
    return model, wave, bm, opts


def simulate_one(bm, truth, seed=1, snr=30.0):
    from jaxspec.simulate import simulate

    theta = {k: np.array([v]) for k, v in truth.items()}
    flux, err, _ = simulate(bm, theta, np.random.default_rng(seed), snr=snr)
    return flux[0], err[0]


@pytest.fixture(scope="session")
def toy_post(toy, calib):
    """One posterior of a well-separated toy binary (short chains)."""
    from jaxspec.infer import sample_binary

    model, wave, bm, opts = toy
    flux, err = simulate_one(bm, TRUTH)
    # max_samples=150: exactly 150 draws (no extension), whatever the diagnostics say
    post = sample_binary(flux, wave, err, model=model, priors=calib.priors(), num_warmup=150, num_samples=150,
                         max_samples=150, seed=0, **opts)
    return post, flux, err
