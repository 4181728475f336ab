"""The line-list generator: interface, sparse-vs-dense accuracy, gradients, physics trends, errors.

Every generator here covers 9-65 A so that it builds and compiles in a
few seconds; generators and their spectra are module-scoped fixtures and
each one is compiled once (one batch of all label vectors a test group
needs). Passes in float32 (default) and with ``JAX_ENABLE_X64=1``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import voigt_profile

from jaxspec.linelist.atomic import load_atomic_tables
from jaxspec.linelist.builtin import builtin_linelist
from jaxspec.linelist.generator import DEFAULT_LABEL_BOUNDS, GeneratorParams, LineListGenerator
from jaxspec.linelist.linelist import LineList
from jaxspec.linelist.reference import dense_eta, residual_flux
from jaxspec.linelist.strength import atomic_arrays, label_dict, line_arrays, line_parameters
from jaxspec.physics import make_resampler
from jaxspec.physics.constants import C_KMS

FLOAT = jnp.zeros(()).dtype  # float32, or float64 under JAX_ENABLE_X64=1
X64 = FLOAT == jnp.float64
SUN = (5772.0, 4.44, 0.0)
NO_VMACRO = dataclasses.replace(GeneratorParams(), vmacro=0.0)

# Vacuum wavelengths [A] of lines used for the trends (from the built-in list).
FE1_LOW_CHI = (5013.466, 5042.477, 5053.043)  # Fe I, chi = 0.86-0.96 eV
FE2 = 5019.835  # Fe II, chi = 2.89 eV (5018.44 A in air)
HBETA = 4862.68
MGB2 = 5174.125

# Label sets evaluated in one batch on the main generator.
DENSE_LABELS = (SUN, (3800.0, 5.5, 1.0), (8000.0, 0.5, -3.0), (4500.0, 1.0, 0.5))
TEFF_SEQ = (4500.0, 5500.0, 6500.0, 7000.0)
LOGG_SEQ = (5.0, 4.0, 3.0, 2.0)
FEH_SEQ = tuple(np.arange(-2.0, 0.51, 0.5))
MAIN_LABELS = {
    "dense": DENSE_LABELS,
    "teff": tuple((t, 4.5, 0.0) for t in TEFF_SEQ),
    "logg": tuple((5800.0, g, 0.0) for g in LOGG_SEQ),
    "feh": tuple((5772.0, 4.44, f) for f in FEH_SEQ),
}
HBETA_DENSE_LABELS = (SUN, (3800.0, 5.5, 1.0), (7500.0, 4.0, 0.0))
HBETA_TEFF_SEQ = tuple(np.arange(5000.0, 7501.0, 500.0))


def _labels(rows):
    return jnp.asarray(np.asarray(rows, dtype=np.float64), dtype=FLOAT)


def _ew_mA(gen, flux, center, half_width):
    """Equivalent width [mA] of 1 - flux over center +- half_width [A]."""
    sel = np.abs(gen.wave - center) <= half_width
    absorbed = (1.0 - np.asarray(flux, np.float64)) * np.gradient(gen.wave)
    return 1e3 * float(np.sum(absorbed[sel]))


def _depression(gen, flux, center, half_width=0.05):
    """Mean 1 - flux within center +- half_width [A]."""
    sel = np.abs(gen.wave - center) <= half_width
    return float(np.mean(1.0 - np.asarray(flux, np.float64)[sel]))


def _line(gen, wave):
    """Index of the generator's line closest to ``wave`` (must be within 2 mA)."""
    i = int(np.argmin(np.abs(gen.linelist.wave - wave)))
    assert abs(gen.linelist.wave[i] - wave) < 2e-3, (wave, gen.linelist.wave[i])
    return i


def _strictly_increasing(values):
    return bool(np.all(np.diff(np.asarray(values)) > 0))


def _tiny_list(**override):
    arrays = dict(
        wave=[5001.0, 5004.0, 5008.0], z=[26, 26, 22], ion=[0, 1, 0],
        chi=[1.0, 2.9, 0.8], loggf=[-1.0, -2.0, -0.5],
    )
    arrays.update(override)
    return LineList.from_arrays(**arrays)


# ------------------------------------------------------- independent numpy reference


def _dense_flux(n_pix, pos, hydrogen, strength, sigma, gamma, p, profile=None):
    """Every line evaluated on every pixel (all in pixel units), float64."""
    eta = dense_eta(n_pix, pos, hydrogen, strength, sigma, gamma, profile=profile)
    return residual_flux(eta, p)


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small():
    """~500 lines on 600 pixels: interface, jit, gradients."""
    return LineListGenerator(builtin_linelist(), 5000.0, 5010.0)


@pytest.fixture(scope="module")
def tiny():
    """3 lines (Fe I, Fe II, Ti I), default physics incl. macroturbulence: eager and check_grads.

    Few lines keep the eager call (op-by-op compilation) and the JVP compile short.
    """
    return LineListGenerator(_tiny_list(), 5000.0, 5010.0)


@pytest.fixture(scope="module")
def small_batch(small):
    """The Sun and the 8 corners of the label box, through one jitted ``flux_batch``."""
    corners = small._box_corners()
    labels = _labels(np.vstack([SUN, corners]))
    return labels, np.asarray(jax.jit(small.flux_batch)(labels))


@pytest.fixture(scope="module")
def main():
    """4995-5060 A, no macroturbulence: dense reference and line-strength trends."""
    return LineListGenerator(builtin_linelist(), 4995.0, 5060.0, params=NO_VMACRO)


@pytest.fixture(scope="module")
def main_results(main):
    """Fluxes and per-line (strength, sigma, gamma) for all MAIN_LABELS, each in one call."""
    names = list(MAIN_LABELS)
    rows = np.vstack([MAIN_LABELS[k] for k in names])
    labels = _labels(rows)
    flux = np.asarray(jax.jit(main.flux_batch)(labels), np.float64)
    zero = jnp.zeros(main.n_lines, FLOAT)
    line_params = jax.jit(jax.vmap(lambda lab: main._line_params(lab, zero)))(labels)
    line_params = [np.asarray(a, np.float64) for a in line_params]
    out, start = {}, 0
    for k in names:
        n = len(MAIN_LABELS[k])
        out[k] = {
            "flux": flux[start : start + n],
            "params": [a[start : start + n] for a in line_params],
        }
        start += n
    return out


@pytest.fixture(scope="module")
def hbeta():
    """H-beta alone (the built-in list's hydrogen line), no macroturbulence."""
    ll = builtin_linelist()
    hydrogen = ll.select((ll.z == 1) & (np.abs(ll.wave - HBETA) < 1.0))
    assert len(hydrogen) == 1
    # The generator accepts ranges within 5 A of a list's lines.
    return LineListGenerator(hydrogen, HBETA - 4.5, HBETA + 4.5, params=NO_VMACRO)


@pytest.fixture(scope="module")
def hbeta_results(hbeta):
    """(flux, line params) for HBETA_DENSE_LABELS and the teff sequence, in one call each."""
    rows = [*HBETA_DENSE_LABELS, *((t, 4.0, 0.0) for t in HBETA_TEFF_SEQ)]
    labels = _labels(rows)
    flux = np.asarray(jax.jit(hbeta.flux_batch)(labels), np.float64)
    zero = jnp.zeros(hbeta.n_lines, FLOAT)
    params = jax.jit(jax.vmap(lambda lab: hbeta._line_params(lab, zero)))(labels)
    params = [np.asarray(a, np.float64) for a in params]
    n = len(HBETA_DENSE_LABELS)
    return {
        "dense": (flux[:n], [a[:n] for a in params]),
        "teff": (flux[n:], [a[n:] for a in params]),
    }


# ------------------------------------------------------------------------ interface


def test_interface_attributes(small):
    assert small.label_names == ("teff", "logg", "feh")
    assert small.label_bounds.shape == (3, 2)
    np.testing.assert_array_equal(
        small.label_bounds, [DEFAULT_LABEL_BOUNDS[n] for n in small.label_names]
    )
    assert np.all(small.label_bounds[:, 0] < small.label_bounds[:, 1])
    wave = small.wave
    assert isinstance(wave, np.ndarray) and wave.dtype == np.float64 and wave.ndim == 1
    assert wave[0] == 5000.0 and wave[-1] >= 5010.0 and wave[-2] < 5010.0
    # Uniform in ln(lambda) with step pixel_kms / c (float64 rounding only).
    np.testing.assert_allclose(np.diff(np.log(wave)), 1.0 / C_KMS, rtol=1e-7)
    assert small.n_lines == len(small.linelist) == small.line_index.size > 100
    assert np.all(np.diff(small.linelist.wave) >= 0)


def test_flux_shape_range_and_batch(small, small_batch):
    labels, batch = small_batch
    assert batch.shape == (labels.shape[0], small.wave.size)
    assert batch.dtype == FLOAT
    assert np.all(np.isfinite(batch))
    assert batch.min() >= 0.0 and batch.max() <= 1.0 + 1e-6
    assert batch[0].min() < 0.5  # the Sun has strong lines here: the check is not vacuous
    # flux_batch is the stack of flux (same jitted arithmetic; float32 rounding of
    # differently fused code is ~1e-7 on values <= 1, so 1e-5 leaves margin).
    flux = jax.jit(small.flux)
    single = np.stack([np.asarray(flux(lab)) for lab in labels[:3]])
    np.testing.assert_allclose(batch[:3], single, atol=1e-12 if X64 else 1e-5)


def test_jit_matches_eager_and_does_not_recompile(tiny):
    """Eager and jitted flux agree; a second same-shaped call does not retrace."""
    gen = tiny
    sun = _labels(SUN)
    eager = np.asarray(gen.flux(sun))
    assert eager.min() < 0.5
    calls = []

    def traced(labels):
        calls.append(1)  # runs only while tracing
        return gen.flux(labels)

    jitted = jax.jit(traced)
    # Same arithmetic, differently fused: float32 rounding ~1e-7 on values <= 1.
    np.testing.assert_allclose(np.asarray(jitted(sun)), eager, atol=1e-12 if X64 else 1e-5)
    other = jitted(_labels((6100.0, 4.1, -0.4)))
    assert not np.allclose(np.asarray(other), eager)  # the labels matter
    assert len(calls) == 1, "a second call with same-shaped labels retraced"
    assert jitted._cache_size() == 1


# ------------------------------------------------------------ sparse vs dense reference


def test_sparse_matches_dense_reference(main, main_results):
    """The block-table evaluation equals a dense sum of every line on every pixel.

    Only the windowing differs: each line is cut where its opacity ratio stays
    below ``window_threshold`` (2e-4) everywhere in the label box, an error of at
    most ~d_max * 2e-4 = 1.3e-4 in flux per line. A pixel sits in the cut tails
    of at most a few tens of lines, so 3e-3 bounds the sum with margin
    (measured: 1.0e-3 at the cool, metal-rich corner, 2.3e-4 at the Sun); the
    rms over pixels must stay below 1e-3 (measured 3.2e-4 and 1.0e-4). A wrong
    width convention (FWHM for HWHM), a lost line, a misplaced window or a
    different flux formula gives errors of 1e-2 to 0.3.
    """
    assert not main._hydrogen_np.any()  # hydrogen is tested on its own below
    res = main_results["dense"]
    strength, sigma, gamma = res["params"]
    n_pix = main.wave.size
    for k, lab in enumerate(DENSE_LABELS):
        ref = _dense_flux(
            n_pix, main._pos_np, main._hydrogen_np, strength[k], sigma[k], gamma[k], main.params
        )
        got = res["flux"][k]
        err = np.abs(got - ref)
        assert err.max() < 3e-3, (lab, err.max(), main.wave[err.argmax()])
        assert np.sqrt(np.mean(err**2)) < 1e-3, lab
    assert res["flux"][0].min() < 0.3  # deep lines: the comparison is not vacuous

    # Against the exact Voigt (scipy) only the TCH approximation differs: it
    # is ~1.2% of the profile peak, which in summed, saturating opacity is
    # measured at <= 0.045 in flux (cool, metal-rich corner); 0.06 allows that.
    for k in (0, 1):
        ref = _dense_flux(
            n_pix, main._pos_np, main._hydrogen_np, strength[k], sigma[k], gamma[k],
            main.params, profile=voigt_profile,
        )
        assert np.abs(res["flux"][k] - ref).max() < 0.06


def test_hydrogen_line_matches_dense_reference(hbeta, hbeta_results):
    """H-beta alone (Holtsmark-like wings up to ~50 A): sparse == dense within 2e-4."""
    assert hbeta._hydrogen_np.all()
    flux, params = hbeta_results["dense"]
    for k in range(len(HBETA_DENSE_LABELS)):
        s, sg, g = (a[k] for a in params)
        ref = _dense_flux(
            hbeta.wave.size, hbeta._pos_np, hbeta._hydrogen_np, s, sg, g, hbeta.params
        )
        # One line: its cut tails cost <= d_max * window_threshold ~ 1.3e-4.
        assert np.abs(flux[k] - ref).max() < 2e-4, k


def test_lines_just_outside_the_range_are_included(main, main_results):
    """Dense sum of all built-in lines within 60 A of the grid vs. the generator.

    Same 3e-3 tolerance as the in-list comparison (windowing of the lines that
    reach the grid), at the cool, metal-rich corner where wings are widest.
    """
    k = DENSE_LABELS.index((3800.0, 5.5, 1.0))
    got = main_results["dense"]["flux"][k]
    lab = _labels(DENSE_LABELS[k])
    ll = builtin_linelist()
    near = ll.select(
        (ll.wave > main.wave[0] - 60.0) & (ll.wave < main.wave[-1] + 60.0) & (ll.z > 1)
    )
    tables = load_atomic_tables()
    keep = tables.partition_known[near.z - 1, near.ion] & np.isfinite(
        tables.solar_abundance[near.z - 1]
    )
    near = near.select(keep)
    assert len(near) > main.n_lines
    p = main.params
    lines, atomic = line_arrays(near, tables), atomic_arrays(tables)
    s, sg, g = jax.jit(
        lambda x: line_parameters(lines, atomic, label_dict(x, main.label_names, p), p)
    )(lab)
    dlnlam = main.pixel_kms / C_KMS
    pos = np.log(near.wave / main.wave[0]) / dlnlam
    ref = _dense_flux(
        main.wave.size, pos, np.zeros(len(near), bool),
        np.asarray(s, np.float64) / (near.wave * dlnlam),
        np.asarray(sg, np.float64) / main.pixel_kms, np.asarray(g, np.float64) / main.pixel_kms, p,
    )
    assert np.abs(got - ref).max() < 3e-3


# ------------------------------------------------------------------------ gradients


def _flux_sum(gen):
    return lambda labels: jnp.sum(gen.flux(labels))


def test_gradient_finite_at_sun_corners_and_bounds(small):
    b = small.label_bounds
    points = [SUN, *small._box_corners()]
    for i in range(3):  # each label at each bound, the others solar
        for j in range(2):
            p = list(SUN)
            p[i] = b[i, j]
            points.append(tuple(p))
    grads = np.asarray(jax.jit(jax.vmap(jax.grad(_flux_sum(small))))(_labels(points)))
    assert grads.shape == (len(points), 3)
    assert np.all(np.isfinite(grads)), np.asarray(points)[~np.all(np.isfinite(grads), axis=1)]
    # More metals -> more absorption: d sum(flux) / d feh < 0 everywhere.
    assert np.all(grads[:, 2] < 0)


def test_check_grads_at_sun(tiny):
    """Forward-mode derivative vs. central finite differences along a random direction.

    On the 3-line generator (every stage of the physics, few ops to compile):
    f = sum(1 - flux) ~ 54 with labels scaled to (1000 K, 1 dex, 1 dex) units so
    that one eps suits all; the directional derivative is ~ -40. The partition
    functions are interpolated linearly in ln T, so the derivative jumps at
    table nodes (one lies 9 K in teff below the Sun): eps must keep the +-eps
    step (|tangent| ~ 1.8 in teff) off it, else the difference averages both
    slopes (off by 0.02 at eps = 1e-2 in either precision).
    float32: f jitters by up to ~1e-4 between neighbouring inputs, i.e. ~0.03 of
    noise in the difference at eps = 3e-3 (measured error 0.005): atol = 2e-2,
    rtol = 2e-3 (allowance 0.1; a derivative off by 0.5% fails). float64:
    eps = 1e-4, measured error 2e-7, atol = rtol = 1e-5.
    """
    scale = jnp.asarray([1000.0, 1.0, 1.0], FLOAT)
    sun = _labels(SUN)
    f = jax.jit(lambda u: jnp.sum(1.0 - tiny.flux(sun + scale * u)))
    u0 = jnp.zeros(3, FLOAT)
    if X64:
        check_grads(f, (u0,), order=1, modes=["fwd"], eps=1e-4, atol=1e-5, rtol=1e-5)
    else:
        check_grads(f, (u0,), order=1, modes=["fwd"], eps=3e-3, atol=2e-2, rtol=2e-3)


# ------------------------------------------------------------------- physics trends


def test_trend_low_excitation_fe1_weakens_with_teff(main, main_results):
    res = main_results["teff"]  # teff 4500, 5500, 6500, 7000 at logg 4.5, [Fe/H] 0
    for w in FE1_LOW_CHI:
        ew = [_ew_mA(main, f, w, 0.3) for f in res["flux"]]
        assert _strictly_increasing(ew[::-1]), (w, ew)
        assert ew[0] > 1.5 * ew[-1], (w, ew)  # a real effect, not rounding
    # Every Fe I line with chi < 1.5 eV in the range: opacity ratio falls with teff.
    sel = (np.asarray(main.linelist.species()) == "Fe I") & (main.linelist.chi < 1.5)
    assert sel.sum() >= 3
    assert np.all(np.diff(res["params"][0][:, sel], axis=0) < 0)


def test_trend_ionized_lines_strengthen_as_logg_falls(main, main_results):
    res = main_results["logg"]  # logg 5, 4, 3, 2 at teff 5800
    ew = [_ew_mA(main, f, FE2, 0.3) for f in res["flux"]]
    assert _strictly_increasing(ew), ew
    sel = np.asarray(main.linelist.species()) == "Fe II"
    assert sel.sum() >= 10
    assert np.all(np.diff(res["params"][0][:, sel], axis=0) > 0)
    i = _line(main, FE2)
    assert res["params"][0][-1, i] > 2.0 * res["params"][0][0, i]


def test_trend_lines_strengthen_with_metallicity(main, main_results):
    res = main_results["feh"]  # [Fe/H] -2.0 ... +0.5 at the Sun's teff, logg
    for w in (*FE1_LOW_CHI, FE2):
        ew = [_ew_mA(main, f, w, 0.3) for f in res["flux"]]
        assert _strictly_increasing(ew), (w, ew)
    total = np.sum(1.0 - res["flux"], axis=1)
    assert _strictly_increasing(total), total
    assert total[-1] > 5.0 * total[0]


def test_trend_hbeta_strengthens_with_teff(hbeta, hbeta_results):
    """H-beta alone (no metal blends), logg 4.0: +-2 A wings and EW deepen from 5000 to 7500 K."""
    flux, _ = hbeta_results["teff"]
    for side in (-2.0, 2.0):
        depth = [_depression(hbeta, f, HBETA + side) for f in flux]
        assert _strictly_increasing(depth), (side, depth)
    ew = [_ew_mA(hbeta, f, HBETA, 4.4) for f in flux]
    assert _strictly_increasing(ew), ew
    assert ew[-1] > 1.5 * ew[0]


def test_trend_mgb_wings_widen_with_logg():
    """Mg b2 5174.125 A, teff 5000: depression at +-1 A from the centre grows with logg 2 -> 4.5."""
    gen = LineListGenerator(builtin_linelist(), 5165.0, 5185.0)
    loggs = np.arange(2.0, 4.51, 0.5)
    flux = np.asarray(jax.jit(gen.flux_batch)(_labels([(5000.0, g, 0.0) for g in loggs])))
    for side in (-1.0, 1.0):
        dep = [_depression(gen, f, MGB2 + side) for f in flux]
        assert _strictly_increasing(dep), (side, dep)
        assert dep[-1] - dep[0] > 0.02, (side, dep)


# --------------------------------------------------------------------------- errors


def test_bad_wavelengths_in_physics_helpers(small):
    obs = np.linspace(5001.0, 5009.0, 50)
    with pytest.raises(ValueError, match="not strictly increasing"):
        make_resampler(small.wave, obs[::-1])
    with pytest.raises(ValueError, match="not finite"):
        make_resampler(small.wave, np.where(np.arange(50) == 7, np.nan, obs))
    with pytest.raises(ValueError, match="model_wave is not strictly increasing"):
        make_resampler(small.wave[::-1], obs)
    with pytest.raises(ValueError, match="outside model_wave"):
        make_resampler(small.wave, obs + 100.0)


@pytest.mark.parametrize(
    ("wave_min", "wave_max", "match"),
    [
        (5010.0, 5000.0, "must exceed"),
        (5005.0, 5005.0, "must exceed"),
        (float("nan"), 5005.0, "wave_min must be a positive finite"),
        (5000.0, float("inf"), "wave_max must be a positive finite"),
        (-5.0, 5005.0, "wave_min must be a positive finite"),
        (6000.0, 6100.0, "outside the line list's coverage"),
    ],
)
def test_bad_wavelength_range(wave_min, wave_max, match):
    with pytest.raises(ValueError, match=match):
        LineListGenerator(_tiny_list(), wave_min, wave_max)


def test_bad_labels(small):
    with pytest.raises(ValueError, match="3 entries"):
        small.flux(_labels(SUN[:2]))
    with pytest.raises(ValueError, match="3 entries"):
        small.flux(_labels((*SUN, 1.0)))
    with pytest.raises(ValueError, match="flux_batch"):
        small.flux(_labels([SUN, SUN]))
    with pytest.raises(ValueError, match="3 entries"):
        small.flux_batch(jnp.ones((2, 4), FLOAT))


@pytest.mark.parametrize(
    ("names", "match"),
    [(("teff", "logg", "feh", "mass"), "unknown labels"), (("teff", "logg"), "must include 'feh'")],
)
def test_bad_label_names(names, match):
    with pytest.raises(ValueError, match=match):
        LineListGenerator(_tiny_list(), 5000.0, 5010.0, label_names=names)


def test_bad_line_lists():
    with pytest.raises(ValueError, match="non-finite 'loggf'"):
        _tiny_list(loggf=[-1.0, np.nan, -0.5])
    with pytest.raises(ValueError, match="has shape"):
        _tiny_list(chi=[1.0, 2.9])
    with pytest.raises(ValueError, match="must be a jaxspec.LineList"):
        LineListGenerator({"wave": [5001.0]}, 5000.0, 5010.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label_names": ("teff", "logg", "feh", "feh")}, "duplicates"),
        ({"label_bounds": {"teff": (6000.0, 5000.0)}}, "lo < hi"),
        ({"label_bounds": {"logg": (np.nan, 5.0)}}, "lo < hi"),
    ],
)
def test_bad_label_setup_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LineListGenerator(_tiny_list(), 5000.0, 5010.0, **kwargs)
