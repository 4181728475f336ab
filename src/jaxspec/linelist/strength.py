"""Per-line strengths and widths from labels, independent of any wavelength grid.

:func:`line_arrays` turns a :class:`LineList` into fixed-shape arrays once
(filling missing damping constants, decoding ABO and hydrogen data);
:func:`line_parameters` maps one label vector to, for every line, the
integrated line-to-continuum opacity ratio ``S`` [A], the Gaussian sigma
[km/s] and the Lorentzian (or hydrogen Stark) half width [km/s]. The
generator converts these to pixels; :func:`max_log_strength` uses them to
decide which weak lines can matter anywhere in a label box.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.linelist import lte
from jaxspec.linelist.linelist import LineList
from jaxspec.physics.constants import A0_CM, C_CGS, E_ESU, H_CGS

__all__ = ["GeneratorParams", "line_arrays", "line_parameters", "max_log_strength", "atomic_arrays"]

_ALPHA_Z = (8, 10, 12, 14, 16, 18, 20, 22)  # O Ne Mg Si S Ar Ca Ti


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GeneratorParams:
    """Global physical parameters of the single-layer model (a pytree of scalars).

    Defaults were tuned once on the observed solar spectrum
    (``scripts/tune_generator.py``); all are differentiable.

    Attributes:
        t_frac: layer temperature over teff.
        tau_layer: continuum optical depth where the layer's pressure is taken.
        d_max: maximum line depth of the Milne-Eddington residual flux.
        vdw_scale: multiplier on van der Waals widths.
        vmic: microturbulence [km/s] when ``vmic`` is not a label.
        h_stark_scale: multiplier on the hydrogen Stark width.
        vmacro: Gaussian macroturbulence sigma [km/s] applied to the flux (0 = off).
        log_strength: common log10 factor on all line-to-continuum opacity
            ratios [dex] (the single-layer model's stand-in for the ratio of
            line- to continuum-forming columns).
        h_log_strength: extra log10 factor on hydrogen lines [dex] (their
            wings form deeper than the metal-line layer).
        core_frac: very strong lines form higher, where the source function
            is lower; an extra depth ``core_frac * (1 - d_max)`` is reached
            as ``eta / (eta_core + eta)`` (0 = plain Milne-Eddington).
        log_eta_core: log10 of ``eta_core``.
    """

    t_frac: float = 0.8951
    tau_layer: float = 0.09714
    d_max: float = 0.6283
    vdw_scale: float = 1.226
    vmic: float = 1.576
    h_stark_scale: float = 3.482
    vmacro: float = 1.464
    log_strength: float = -0.2011
    h_log_strength: float = 0.4884
    core_frac: float = 0.7529
    log_eta_core: float = 1.826


def atomic_arrays(tables) -> dict:
    """The parts of :class:`~jaxspec.linelist.atomic.AtomicTables` the physics needs, as jax arrays."""
    solar = np.nan_to_num(tables.solar_abundance, nan=-18.0) - 12.0
    z = np.arange(1, 93)
    return {
        "log_t_grid": jnp.asarray(tables.log_t_grid),
        "partition": jnp.asarray(tables.partition),
        # Undefined ionizations (H II -> H III) get 1000 eV: never ionized.
        "ionization_energy": jnp.asarray(np.nan_to_num(tables.ionization_energy, nan=1e3)),
        "atomic_mass": jnp.asarray(tables.atomic_mass),
        "log_eps_solar": jnp.asarray(solar),
        "metal": jnp.asarray(z >= 3),
        "alpha": jnp.asarray(np.isin(z, _ALPHA_Z)),
    }


def line_arrays(ll: LineList, tables, dtype=None) -> dict:
    """Fixed-shape per-line arrays for :func:`line_parameters`.

    Missing damping constants are filled here: classical radiative damping
    ``Gamma_rad = 2.223e15 / lambda^2`` [s^-1, lambda in A], and
    ``log Gamma_4 = -6.0``, ``log Gamma_6 = -7.7`` (typical FGK metal-line
    values). For hydrogen lines the lower principal quantum number comes from
    the excitation energy and the upper one from VALD's van der Waals field
    (which holds it for H) or, failing that, from the upper-level energy.
    """
    dtype = dtype or (jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    w = np.asarray(ll.wave, dtype=np.float64)
    z = np.asarray(ll.z)
    ion = np.asarray(ll.ion)
    chi = np.asarray(ll.chi, dtype=np.float64)
    hyd = z == 1
    lgr = np.asarray(ll.log_gamma_rad, dtype=np.float64)
    lgr = np.where(np.isfinite(lgr), lgr, np.log10(2.223e15 / w**2))
    lgs = np.asarray(ll.log_gamma_stark, dtype=np.float64)
    lgs = np.where(np.isfinite(lgs), lgs, lte.DEFAULT_LOG_GAMMA_STARK)
    vdw = np.asarray(ll.vdw, dtype=np.float64)
    finite = np.isfinite(vdw)
    is_abo = finite & (vdw >= 20.0) & ~hyd
    simple = np.where(finite & (vdw < 0), vdw, lte.DEFAULT_LOG_GAMMA6)
    # Hydrogen: VALD's Stark and van der Waals fields hold other things (2.0 and
    # the upper quantum number); its broadening is the linear Stark profile below.
    lgs = np.where(hyd, -30.0, lgs)
    simple = np.where(hyd, -30.0, simple)
    sigma = np.where(is_abo, np.floor(np.nan_to_num(vdw)), 0.0)
    alpha = np.where(is_abo, np.nan_to_num(vdw) - sigma, 0.0)

    def principal(e):
        return np.rint(1.0 / np.sqrt(np.clip(1.0 - e / 13.598, 1e-6, 1.0)))

    n_low = np.where(hyd, principal(chi), 0.0)
    n_up = np.where(hyd & finite, np.nan_to_num(vdw), 0.0)
    n_up = np.where(hyd & (n_up <= n_low), principal(chi + 12398.42 / w), n_up)
    # Linear Stark displacement per unit field [cm / esu]:
    # 3 e a0 lambda^2 / (2 h c) (n_u^2 - n_l^2).
    stark_k = np.where(
        hyd, 1.5 * E_ESU * A0_CM * (w * 1e-8) ** 2 / (H_CGS * C_CGS) * (n_up**2 - n_low**2), 0.0
    )
    arr = {
        "wave": w,
        "loggf": np.asarray(ll.loggf, dtype=np.float64),
        "chi": chi,
        "mass": tables.atomic_mass[z - 1],
        "log_gamma_rad": lgr,
        "log_gamma_stark": lgs,
        "log_gamma6": simple,
        "abo_sigma": sigma,
        "abo_alpha": alpha,
        "stark_k": stark_k,
    }
    nodes, i0, wgt = _continuum_nodes(w)
    arr["cont_nodes"] = nodes
    arr["cont_w"] = wgt
    out = {k: jnp.asarray(v, dtype=dtype) for k, v in arr.items()}
    out["cont_i0"] = jnp.asarray(i0, dtype=jnp.int32)
    out["zi"] = jnp.asarray(z - 1, dtype=jnp.int32)
    out["ion"] = jnp.asarray(ion, dtype=jnp.int32)
    out["is_abo"] = jnp.asarray(is_abo)
    out["hydrogen"] = jnp.asarray(hyd)
    return out


# H I bound-free edges (n = 3...8) [A]: the continuum is interpolated only
# between nodes on the same side of an edge.
_H_EDGES = tuple(911.75 * n * n for n in range(3, 9))
_NODE_STEP = 5.0  # [A]; H- opacity changes by < 1e-5 (relative) between nodes


def _continuum_nodes(wave):
    """Static wavelength nodes for the continuum opacity, and per-line interpolation weights.

    Returns ``(nodes (K,), i0 (n,), w (n,))`` with a line's opacity
    ``k[i0] (1 - w) + k[i0 + 1] w``; nodes are at most ``_NODE_STEP`` apart and
    never straddle an H I bound-free edge.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.size == 0:
        return np.array([5000.0, 5001.0]), np.zeros(0, np.int64), np.zeros(0)
    bounds = [wave.min() - 1.0] + [e for e in _H_EDGES if wave.min() < e < wave.max()]
    bounds.append(wave.max() + 1.0)
    nodes, i0, wgt = [], np.zeros(wave.size, np.int64), np.zeros(wave.size)
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        # Segment (a, b]: nodes strictly inside the edges (H I bf drops at the edge).
        lo = a + (1e-3 if k > 0 else 0.0)
        seg = np.linspace(lo, b, max(2, int(np.ceil((b - lo) / _NODE_STEP)) + 1))
        start = sum(len(x) for x in nodes)
        nodes.append(seg)
        sel = (wave > a) & (wave <= b) if k > 0 else (wave >= a) & (wave <= b)
        j = np.clip(np.searchsorted(seg, wave[sel]) - 1, 0, seg.size - 2)
        i0[sel] = start + j
        wgt[sel] = (wave[sel] - seg[j]) / (seg[j + 1] - seg[j])
    return np.concatenate(nodes), i0, wgt


def line_parameters(lines, atomic, labels: dict, params: GeneratorParams, loggf_offset=0.0):
    """Per-line strength and widths for one set of labels.

    Args:
        lines: from :func:`line_arrays`.
        atomic: from :func:`atomic_arrays`.
        labels: dict with scalars ``teff`` [K], ``logg``, ``feh``, ``alpha_fe``
            [dex] and ``vmic`` [km/s].
        params: :class:`GeneratorParams`.
        loggf_offset: scalar or (n_lines,) added to log gf [dex].

    Returns:
        ``(S, sigma, gamma)``, each (n_lines,): integrated line-to-continuum
        opacity ratio [A], Gaussian sigma [km/s], Lorentzian HWHM [km/s]
        (for hydrogen lines: the Holtsmark half width plus damping) [km/s].
    """
    L = lines
    log_eps = (
        atomic["log_eps_solar"]
        + jnp.where(atomic["metal"], labels["feh"], 0.0)
        + jnp.where(atomic["alpha"], labels["alpha_fe"], 0.0)
    )
    st = lte.atmosphere_state(
        labels["teff"],
        labels["logg"],
        log_eps,
        atomic,
        t_frac=params.t_frac,
        tau_layer=params.tau_layer,
    )
    temp = st["temperature"]
    # Continuum opacity on a few static nodes, interpolated to the lines.
    k_nodes = lte.continuum_opacity(L["cont_nodes"], temp, st["log_pe"])
    k_line = k_nodes[L["cont_i0"]] * (1.0 - L["cont_w"]) + k_nodes[L["cont_i0"] + 1] * L["cont_w"]
    k_cont = k_line * st["h_neutral_fraction"] + lte.SIGMA_T * st["electrons_per_h"]
    strength = lte.line_center_strength(
        L["wave"],
        L["loggf"] + loggf_offset + params.log_strength
        + jnp.where(L["hydrogen"], params.h_log_strength, 0.0),
        L["chi"],
        log_eps[L["zi"]],
        st["log_fractions"][L["zi"], L["ion"]],
        st["partition"][L["zi"], L["ion"]],
        temp,
        k_cont,
    )
    sigma = lte.doppler_sigma_kms(temp, L["mass"], labels["vmic"])
    gamma_fwhm = lte.lorentz_fwhm(
        L["log_gamma_rad"],
        L["log_gamma_stark"],
        L["log_gamma6"],
        L["abo_sigma"],
        L["abo_alpha"],
        L["is_abo"],
        L["mass"],
        temp,
        st["n_e"],
        st["n_h"],
        params.vdw_scale,
    )
    # HWHM in velocity: lambda Gamma / (4 pi) [cm/s] -> km/s.
    gamma = L["wave"] * 1e-8 * gamma_fwhm / (4.0 * np.pi) * 1e-5
    # Hydrogen: Holtsmark half width from the normal field F0 = 2.61 e n_e^(2/3).
    f0 = 2.61 * E_ESU * jnp.power(st["n_e"], 2.0 / 3.0)
    w_h = params.h_stark_scale * L["stark_k"] * f0 / (L["wave"] * 1e-8) * (C_CGS * 1e-5)
    gamma = jnp.where(L["hydrogen"], w_h + gamma, gamma)
    return strength, sigma, gamma


def label_dict(values, names, params: GeneratorParams) -> dict:
    """Labels as a dict with defaults for optional ``alpha_fe`` (0) and ``vmic`` (params.vmic)."""
    lab = {n: values[i] for i, n in enumerate(names)}
    lab.setdefault("alpha_fe", 0.0)
    lab.setdefault("vmic", params.vmic)
    return lab


def max_log_strength(
    linelist: LineList,
    tables=None,
    *,
    bounds=None,
    params: GeneratorParams | None = None,
) -> np.ndarray:
    """log10 of each line's largest central line-to-continuum opacity ratio over a label box.

    The ratio is taken at the centre of the Doppler core,
    ``S / (sqrt(2 pi) sigma_lambda)``, maximized over the corners of the box
    (line strengths are monotonic in each label over FGK ranges to a good
    approximation). A line with a value below about -2 changes the normalized
    flux by less than ~1% anywhere in the box.

    Args:
        linelist: lines to evaluate.
        tables: :class:`~jaxspec.linelist.atomic.AtomicTables` (default: shipped ones).
        bounds: dict of (lo, hi) for ``teff``, ``logg``, ``feh``; default
            teff 3800-8000 K, logg 0.5-5.5, feh -3.0..+1.0 (the generator's box).
        params: :class:`GeneratorParams`.

    Returns:
        (n_lines,) float64 array.
    """
    from jaxspec.linelist.atomic import load_atomic_tables

    tables = tables or load_atomic_tables()
    params = params or GeneratorParams()
    b = {"teff": (3800.0, 8000.0), "logg": (0.5, 5.5), "feh": (-3.0, 1.0)}
    b.update(bounds or {})
    lines = line_arrays(linelist, tables)
    atomic = atomic_arrays(tables)
    names = ("teff", "logg", "feh")

    @jax.jit
    def one(lab):
        s, sig, _ = line_parameters(lines, atomic, label_dict(lab, names, params), params)
        return jnp.log10(s / (np.sqrt(2 * np.pi) * sig / 299792.458 * lines["wave"]))

    best = None
    for corner in itertools.product(*[b[n] for n in names]):
        v = np.asarray(one(jnp.asarray(corner, dtype=lines["wave"].dtype)), dtype=np.float64)
        best = v if best is None else np.maximum(best, v)
    return best
