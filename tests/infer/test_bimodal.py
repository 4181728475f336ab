"""A bimodal posterior is reported, not averaged.

A near-equal pair (teff 5700 / 5500 K, flux ratio 0.92) 14 km/s apart with
8 km/s lines: the solution and its mirror (stars swapped, flux ratio capped
at 1) are close in chi2, and the fit's local optima hold both. Chains start
in both; they cannot cross (the path between them passes through rv_1 =
rv_2, where the blend fits worse), so the posterior must say it has two
modes, each with its own chains and weight.
"""

import numpy as np
import pytest

from tests.infer.conftest import simulate_one

PAIR = {"teff_1": 5700.0, "logg_1": 4.4, "teff_2": 5500.0, "logg_2": 4.5, "feh": -0.2, "rv_1": -7.0,
        "rv_2": 7.0, "vsini_1": 3.0, "vsini_2": 3.0, "flux_ratio": 0.92}


@pytest.mark.slow
def test_bimodal_posterior_reports_both_modes(toy, calib):
    from jaxspec.infer import FLAGS, sample_binary

    model, wave, bm, opts = toy
    flux, err = simulate_one(bm, PAIR, seed=4, snr=30.0)
    post = sample_binary(flux, wave, err, model=model, priors=calib.priors(), num_warmup=150, num_samples=150,
                         chi2_margin=20.0, seed=1, **opts)
    assert post.multimodal and post.flag & FLAGS["multimodal"], post.summary()
    side = [np.sign(m["medians"]["rv_2"] - m["medians"]["rv_1"]) for m in post.modes]
    assert set(side) == {-1.0, 1.0}, post.modes  # one mode has the stars the other way round
    w = [m["weight"] for m in post.modes]
    assert abs(sum(w) - 1) < 1e-9 and all(0 <= x <= 1 for x in w)
    assert sorted(c for m in post.modes for c in m["chains"]) == [0, 1, 2, 3]
    text = post.summary()
    assert "MULTIMODAL" in text and "weight" in text
    # per-mode draws are the chains of that mode only
    assert post.mode_samples(0)["rv_1"].shape[0] == len(post.modes[0]["chains"])
