"""Property-based tests (hypothesis) of fit_binary and fit_single on random finite inputs.

Whatever finite flux, positive errors and mask a caller passes, a fit either raises a
``ValueError`` that names the problem (every pixel masked, fewer usable pixels than
parameters) or returns a result in which every parameter, error and chi-square is finite,
unless the result is flagged (``flag != 0``): never a NaN with flag 0.

One toy model (:func:`tests._shared.toy_model`) and one fixed pixel count (:func:`toy_wave`),
so each fitter compiles once; examples are derandomized (the same ones on every run) and no
example database is written.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxspec.fit.binary import fit_binary, fit_single, prepare_spectrum
from jaxspec.fit.result import FLAGS
from tests._shared import toy_model, toy_wave

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow of extreme inputs

WAVE = toy_wave()
P = WAVE.size
OPTIONS = {"rv_range": 150.0}  # as the toy benchmark: a smaller TODCOR grid
SETTINGS = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_finite = {"allow_nan": False, "allow_infinity": False}


def _spectrum(draw):
    """A realistic spectrum (continuum times the toy lines, noise), scaled by a random finite factor."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1.0, 1e-30, 1e-6, 1e3, 1e12, 1e30, -1.0]))
    line = 1.0 - 0.5 * np.exp(-0.5 * ((WAVE - rng.uniform(WAVE[0], WAVE[-1])) / 0.5) ** 2)
    return scale * line * (1.0 + 0.02 * rng.normal(size=P))


@st.composite
def fluxes(draw):
    """Finite flux of length P: any float, extremes, zeros, constants, spikes, steps, realistic lines."""
    kind = draw(st.sampled_from(["any", "moderate", "constant", "zeros", "spikes", "step", "realistic"]))
    if kind == "any":  # the whole finite float64 range, 1e308 included
        return draw(hnp.arrays(np.float64, P, elements=st.floats(**_finite)))
    if kind == "moderate":
        return draw(hnp.arrays(np.float64, P, elements=st.floats(-1e4, 1e4, **_finite)))
    if kind == "constant":
        return np.full(P, draw(st.floats(**_finite)))
    if kind == "zeros":
        return np.zeros(P)
    base = _spectrum(draw) if kind in ("realistic", "spikes") else np.ones(P)
    if kind == "spikes":
        idx = draw(st.lists(st.integers(0, P - 1), min_size=1, max_size=5))
        base[idx] = draw(st.floats(-1e300, 1e300, **_finite))
    if kind == "step":
        base[draw(st.integers(1, P - 1)):] = draw(st.floats(-1e6, 1e6, **_finite))
    return base


@st.composite
def errors(draw):
    """Finite positive errors: constant, any positive float (1e-300 and 1e300 included), or per pixel."""
    kind = draw(st.sampled_from(["constant", "extreme", "per_pixel"]))
    if kind == "constant":
        return np.full(P, draw(st.floats(1e-4, 1e2)))
    if kind == "extreme":
        return np.full(P, draw(st.floats(min_value=1e-300, max_value=1e300)))
    return draw(hnp.arrays(np.float64, P, elements=st.floats(min_value=1e-8, max_value=1e8)))


@st.composite
def masks(draw):
    """True = masked pixel: none, random, a contiguous block, or all but a few."""
    kind = draw(st.sampled_from(["none", "random", "block", "almost_all"]))
    m = np.zeros(P, dtype=bool)
    if kind == "random":
        m = draw(hnp.arrays(np.bool_, P))
    elif kind == "block":
        a = draw(st.integers(0, P - 1))
        m[a:a + draw(st.integers(1, P))] = True
    elif kind == "almost_all":
        m[:] = True
        m[draw(st.lists(st.integers(0, P - 1), max_size=20))] = False
    return m


def _n_required(single: bool, flux, kw) -> int:
    """Usable pixels a fit needs: more than the free parameters plus the continuum coefficients."""
    from jaxspec.fit.binary import _get_fitter, _options

    # binary: teff, logg per star, feh, rv_1, rv_2, vsini_1, vsini_2, flux_ratio = 10 free;
    # single star: teff_1, logg_1, feh, rv_1, vsini_1 = 5; continuum (continuum_degree="auto",
    # one segment): degree 2 = 3 coefficients for continuum-normalized flux, at least 1 for
    # flux the fit's check finds not normalized (a few usable pixels deep in a line)
    model = toy_model()
    f, _, iv = prepare_spectrum(flux, WAVE, kw.get("err"), kw.get("ivar"))
    fitter = _get_fitter(model, WAVE, None, _options(model, **OPTIONS), None)
    normalized = fitter.normalized_rows(lambda a, b: (f[None], iv[None]), 1)[0]
    return (5 if single else 10) + (3 if normalized else 1) + 1


def _check(fit_fn, flux, err, mask, use_ivar, single):
    err = np.where(mask, np.inf, err)
    kw = {"ivar": np.where(mask, 0.0, 1.0 / err**2)} if use_ivar else {"err": err}
    if use_ivar:
        # 1 / err^2 of a finite err can overflow to inf: such pixels are masked too
        n_good = int(np.sum(np.isfinite(kw["ivar"]) & (kw["ivar"] > 0)))
    else:
        with np.errstate(over="ignore"):
            n_good = int(np.sum(np.isfinite(1.0 / err**2) & (1.0 / err**2 > 0)))
    if n_good == 0 or n_good < _n_required(single, flux, kw):
        with pytest.raises(ValueError, match="masked|usable pixels"):
            fit_fn(flux, WAVE, model=toy_model(), **kw, **OPTIONS)
        return "raised"
    fit = fit_fn(flux, WAVE, model=toy_model(), **kw, **OPTIONS)
    values = {f"{k}": fit.params[k] for k in fit.names}
    values.update({f"{k}_err": fit.errors[k] for k in fit.names})
    values.update(chi2=fit.chi2, single_chi2=fit.single_chi2, delta_chi2=fit.delta_chi2)
    values.update({f"single_{k}": fit.single_params[k] for k in fit.names})
    bad = sorted(k for k, v in values.items() if not np.isfinite(v))
    flag = int(fit.flag)
    assert flag != 0 or not bad, f"flag 0 but non-finite {bad}"
    assert int(fit.n_pixels) <= n_good  # ivar below float32's range counts as masked in the fit
    if flag & FLAGS["too_few_pixels"]:  # flagged values are NaN, never stale numbers
        assert np.isnan(fit.chi2)
    return f"flagged: {fit.flag_message}" if flag else "finite"


@settings(SETTINGS, max_examples=160)
@given(flux=fluxes(), err=errors(), mask=masks(), use_ivar=st.booleans())
def test_fit_binary_is_finite_or_flagged(flux, err, mask, use_ivar):
    event(_check(fit_binary, flux, err, mask, use_ivar, single=False))


@settings(SETTINGS, max_examples=60)
@given(flux=fluxes(), err=errors(), mask=masks(), use_ivar=st.booleans())
def test_fit_single_is_finite_or_flagged(flux, err, mask, use_ivar):
    event(_check(fit_single, flux, err, mask, use_ivar, single=True))


@settings(SETTINGS, max_examples=100)
@given(flux=hnp.arrays(np.float64, P, elements=st.floats(), fill=st.nothing()),  # every pixel drawn
       err=hnp.arrays(np.float64, P, elements=st.one_of(st.floats(min_value=0.0), st.just(-np.inf)),
                      fill=st.nothing()),
       negative=st.one_of(st.none(), st.integers(0, P - 1)))
def test_prepare_spectrum_masks_every_bad_pixel(flux, err, negative):
    """Any floats (NaN, inf, zero, -inf included): finite flux and finite, non-negative ivar with
    every non-finite flux or error and every zero error masked; a negative error is a ValueError."""
    if negative is not None:
        err[negative] = -0.5
        with pytest.raises(ValueError, match="err has negative values"):
            prepare_spectrum(flux, WAVE, err)
        event("raised")
        return
    f, _, iv = prepare_spectrum(flux, WAVE, err)
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(iv)) and np.all(iv >= 0)
    with np.errstate(over="ignore", divide="ignore"):
        usable = np.isfinite(flux) & np.isfinite(err) & (err > 0) & np.isfinite(1.0 / err**2)
    assert np.all(iv[~usable] == 0) and np.all(f[usable] == flux[usable])
    event(f"{int(np.sum(iv > 0)) // 48 * 48}+ usable pixels")
