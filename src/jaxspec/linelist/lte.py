"""LTE physics of a single-layer line-forming region (pure JAX functions).

The generator treats the line-forming region as **one homogeneous layer**
(temperature ``T = t_frac * teff``) above a continuum-forming region, in the
spirit of the Milne-Eddington / Schuster-Schwarzschild models. Everything a
line needs is evaluated in that layer:

* Gas and electron pressure: hydrostatic equilibrium at a continuum optical
  depth ``tau_layer`` with the layer's own continuum opacity
  (``P_g = g tau / kappa(P_g, P_e)``) together with charge conservation over
  all elements (Saha equation with tabulated partition functions and
  ionization energies; electrons from H and every metal). Both are solved by
  a fixed number of damped fixed-point iterations in log pressure, so the
  result is smooth and differentiable in teff, logg and feh.
* Populations: Saha ionization over stages I-III and Boltzmann excitation
  ``g_l exp(-chi / kT) / U(T)`` (``g_l`` is inside ``gf``).
* Continuum opacity: H- bound-free and free-free (Gray, *The Observation and
  Analysis of Stellar Photospheres*, 3rd ed., eqs. 8.12 and 8.13), H I
  bound-free from n = 3...8 plus the Unsoeld integral over higher levels
  (Gray eq. 8.8; at 3800-9000 A the Balmer continuum is not reached), and
  Thomson scattering by free electrons.
* Line widths: Gaussian Doppler width from thermal and microturbulent motion;
  Lorentzian width from radiative, quadratic-Stark and van der Waals damping
  (VALD constants, ABO theory where given; defaults where missing, see
  :func:`lorentz_fwhm`).

All functions take scalar labels and per-line arrays, and are written for
one label vector; the generator ``vmap`` s them once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import gammaln

from jaxspec.physics.constants import (
    A0_CM,
    AMU_CGS,
    C_CGS,
    H_CGS,
    K_CGS,
    K_EV,
    PI_E2_MC,
)

__all__ = [
    "atmosphere_state",
    "continuum_opacity",
    "doppler_sigma_kms",
    "ionization_fractions",
    "lorentz_fwhm",
    "partition_functions",
]

# Wavelength where the layer's mean continuum opacity is evaluated for the
# hydrostatic equation [A]; H- opacity is flat enough around it.
_KAPPA_REF_WAVE = 5000.0
# Opacities per atom are handled in units of 1e-26 cm^2 so that float32
# reverse-mode derivatives (which divide by the opacity) stay finite.
KAPPA_UNIT = 1e-26
# Thomson cross-section [KAPPA_UNIT].
SIGMA_T = 6.6524587e-25 / KAPPA_UNIT
# Constant of the Saha equation with pressures in dyn cm^-2:
# Phi = 2 U_{j+1}/U_j (2 pi m_e k T / h^2)^{3/2} k T = 2 U_{j+1}/U_j * 0.3334 T^{5/2} 10^{-5040 chi / T}
_SAHA_LOG_CONST = np.log10(0.3334)


def partition_functions(log_t_grid, partition, temperature):
    """Partition functions of all elements and stages at one temperature.

    Args:
        log_t_grid: (n_T,) natural log of the tabulation temperatures [K], uniform.
        partition: (92, 3, n_T) partition functions.
        temperature: scalar [K].

    Returns:
        (92, 3) partition functions: cubic (Catmull-Rom) interpolation in
        ln T, so that the first derivative is continuous (linear interpolation
        makes gradients jump at every table node, which hurts Gauss-Newton
        fits and HMC); clamped at the table's ends.
    """
    n_t = log_t_grid.shape[0]
    lt = jnp.clip(jnp.log(temperature), log_t_grid[0], log_t_grid[-1])
    step = log_t_grid[1] - log_t_grid[0]
    pos = (lt - log_t_grid[0]) / step
    i1 = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, n_t - 2)
    t = pos - i1
    i0 = jnp.maximum(i1 - 1, 0)
    i2 = i1 + 1
    i3 = jnp.minimum(i1 + 2, n_t - 1)
    p0, p1, p2, p3 = (partition[..., i] for i in (i0, i1, i2, i3))
    t2 = t * t
    t3 = t2 * t
    return (
        p1
        + 0.5 * t * (p2 - p0)
        + t2 * (p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3)
        + t3 * (-0.5 * p0 + 1.5 * p1 - 1.5 * p2 + 0.5 * p3)
    )


def saha_log_phi(u, ionization_energy, temperature):
    """log10 of the Saha ratios ``N_{j+1} P_e / N_j`` [dyn cm^-2] for j = 0, 1.

    Args:
        u: (92, 3) partition functions.
        ionization_energy: (92, 3) [eV]; NaN where undefined (then the ratio is
            effectively 0: log10 = -60).
        temperature: scalar [K].

    Returns:
        (92, 2) log10 ratios, clipped to [-60, 30].
    """
    theta = 5040.0 / temperature
    chi = ionization_energy[:, :2]
    log_phi = (
        jnp.log10(2.0 * u[:, 1:] / u[:, :2])
        + 2.5 * jnp.log10(temperature)
        - theta * jnp.where(jnp.isfinite(chi), chi, 1e3)
        + _SAHA_LOG_CONST
    )
    return jnp.clip(log_phi, -60.0, 30.0)


def ionization_fractions(log_phi, log_pe):
    """log10 fractions of every element in stages I, II, III.

    Args:
        log_phi: (92, 2) log10 Saha ratios from :func:`saha_log_phi`.
        log_pe: scalar log10 electron pressure [dyn cm^-2].

    Returns:
        (92, 3) log10 fractions (the fractions sum to 1 over the last axis).
        Computed in log space so that no stage underflows to log(0).
    """
    l1 = log_phi[:, 0] - log_pe
    l2 = l1 + log_phi[:, 1] - log_pe
    terms = jnp.stack([jnp.zeros_like(l1), l1, l2], axis=-1) * np.log(10.0)
    log_norm = jax.nn.logsumexp(terms, axis=-1, keepdims=True)
    return (terms - log_norm) / np.log(10.0)


def continuum_opacity(wave, temperature, log_pe):
    """Continuum opacity per neutral hydrogen atom [1e-26 cm^2], Thomson scattering excluded.

    H- bound-free and free-free and H I bound-free, each with the
    stimulated-emission correction (Gray 3rd ed., ch. 8).

    Args:
        wave: (...,) wavelengths [A] (valid 2250-16000 A for H- bf).
        temperature: scalar [K].
        log_pe: scalar log10 electron pressure [dyn cm^-2].

    Returns:
        (...,) opacity per neutral H atom in units of ``KAPPA_UNIT`` = 1e-26 cm^2.
    """
    theta = 5040.0 / temperature
    pe = jnp.power(10.0, log_pe)
    lam = wave
    stim = -jnp.expm1(-2.302585093 * 1.2398e4 / lam * theta)
    # H- bound-free cross-section [1e-18 cm^2], Gray eq. 8.11 (zero beyond the
    # 16,419 A threshold).
    a = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14, -1.39568e-18, 2.78701e-23)
    alpha_bf = a[6]
    for coef in a[5::-1]:
        alpha_bf = alpha_bf * lam + coef
    alpha_bf = jnp.where(lam < 16300.0, jnp.maximum(alpha_bf, 0.0), 0.0) * (1e-18 / KAPPA_UNIT)
    k_hm_bf = 4.158e-10 * alpha_bf * pe * theta**2.5 * jnp.power(10.0, 0.754 * theta) * stim
    # H- free-free, Gray eq. 8.13 (already includes stimulated emission).
    lg = jnp.log10(lam)
    f0 = -2.2763 - 1.6850 * lg + 0.76661 * lg**2 - 0.053346 * lg**3
    f1 = 15.2827 - 9.2846 * lg + 1.99381 * lg**2 - 0.142631 * lg**3
    f2 = -197.789 + 190.266 * lg - 67.9775 * lg**2 + 10.6913 * lg**3 - 0.625151 * lg**4
    lth = jnp.log10(theta)
    k_hm_ff = (1e-26 / KAPPA_UNIT) * pe * jnp.power(10.0, f0 + f1 * lth + f2 * lth**2)
    # H I bound-free from levels n >= 3 (thresholds 8204 A, 14585 A, ...), Gray eq. 8.8,
    # with Gaunt factors of 1 and the Unsoeld integral for n >= 9.
    chi_ion = 13.598
    alpha0 = 1.0449e-26 / KAPPA_UNIT
    k_h = jnp.zeros_like(lam)
    for n in range(3, 9):
        edge = 911.75 * n * n
        chi_n = chi_ion * (1.0 - 1.0 / (n * n))
        term = alpha0 * lam**3 / n**3 * jnp.power(10.0, -theta * chi_n)
        k_h = k_h + jnp.where(lam <= edge, term, 0.0)
    chi_9 = chi_ion * (1.0 - 1.0 / 81.0)
    log_e = 0.4342945
    k_h = k_h + alpha0 * lam**3 * log_e / (2.0 * theta * chi_ion) * (
        jnp.power(10.0, -theta * chi_9) - jnp.power(10.0, -theta * chi_ion)
    )
    return k_hm_bf + k_hm_ff + k_h * stim


def atmosphere_state(
    teff,
    logg,
    log_eps,
    tables,
    *,
    t_frac,
    tau_layer,
    n_iter: int = 40,
):
    """Temperature, pressures and ionization state of the line-forming layer.

    Args:
        teff: effective temperature [K].
        logg: log10 surface gravity [cgs].
        log_eps: (92,) abundances log10(N_X / N_H) (solar + [X/H]; NaN-free,
            -inf allowed for absent elements is NOT allowed: use a large negative number).
        tables: mapping with jax arrays ``log_t_grid``, ``partition``,
            ``ionization_energy``, ``atomic_mass``.
        t_frac: layer temperature over teff.
        tau_layer: continuum optical depth at which the pressure is evaluated.
        n_iter: fixed number of fixed-point iterations (static).

    Returns:
        dict with ``temperature`` [K], ``log_pg``, ``log_pe`` [dyn cm^-2],
        ``log_fractions`` (92, 3) log10 stage fractions, ``partition`` (92, 3), ``n_h`` (number density of
        neutral H [cm^-3]), ``n_e`` [cm^-3], ``h_neutral_fraction`` and
        ``electrons_per_h`` (free electrons per H nucleus).
    """
    temperature = t_frac * teff
    g = jnp.power(10.0, logg)
    u = partition_functions(tables["log_t_grid"], tables["partition"], temperature)
    log_phi = saha_log_phi(u, tables["ionization_energy"], temperature)
    eps = jnp.power(10.0, log_eps)  # (92,) N_X / N_H
    # Mass per H nucleus [amu] and nuclei per H nucleus.
    mass_per_h = jnp.sum(eps * tables["atomic_mass"])
    nuclei_per_h = jnp.sum(eps)

    def electrons_per_h(log_pe):
        log_f = ionization_fractions(log_phi, log_pe)
        f = jnp.power(10.0, log_f)
        return jnp.sum(eps * (f[:, 1] + 2.0 * f[:, 2])), log_f

    def body(_, state):
        log_pg, log_pe = state
        ne_h, f = electrons_per_h(log_pe)
        # Charge balance: Pe / Pg = n_e / (n_nuclei + n_e).
        log_pe_new = log_pg + jnp.log10(ne_h / (nuclei_per_h + ne_h))
        # Hydrostatic: Pg = g tau / kappa_mass, kappa per gram from kappa per neutral H.
        k_h = continuum_opacity(_KAPPA_REF_WAVE, temperature, log_pe)
        # kappa per gram = kappa per H nucleus [KAPPA_UNIT] * KAPPA_UNIT / (mass per H [g]).
        log_k_mass = (
            jnp.log10(k_h * jnp.power(10.0, f[0, 0]) + SIGMA_T * ne_h)
            - jnp.log10(mass_per_h)
            + np.log10(KAPPA_UNIT / AMU_CGS)
        )
        log_pg_new = jnp.log10(g * tau_layer) - log_k_mass
        # Damped updates in log space: the maps are decreasing in their argument,
        # so averaging makes them contractions.
        return 0.5 * (log_pg + log_pg_new), 0.5 * (log_pe + log_pe_new)

    # The carry takes the promoted dtype of all inputs (float32 labels with
    # float64 tables under JAX_ENABLE_X64 would otherwise change type in the loop).
    dtype = jnp.result_type(teff, logg, log_eps, tables["partition"], tables["atomic_mass"])
    log_pg0 = jnp.asarray(4.0 + (2.0 / 3.0) * (logg - 4.44), dtype)
    log_pe0 = log_pg0 - 4.0
    log_pg, log_pe = lax.fori_loop(0, n_iter, body, (log_pg0, log_pe0))
    ne_h, log_f = electrons_per_h(log_pe)
    f_h1 = jnp.power(10.0, log_f[0, 0])
    kt = K_CGS * temperature
    p_g = jnp.power(10.0, log_pg)
    n_tot = p_g / kt
    n_h_nuclei = n_tot / (nuclei_per_h + ne_h)
    return {
        "temperature": temperature,
        "log_pg": log_pg,
        "log_pe": log_pe,
        "log_fractions": log_f,
        "partition": u,
        "n_h": n_h_nuclei * f_h1,
        "n_e": n_h_nuclei * ne_h,
        "h_neutral_fraction": f_h1,
        "electrons_per_h": ne_h,
    }


def doppler_sigma_kms(temperature, mass_amu, vmic):
    """Gaussian standard deviation of the line profile [km/s].

    sigma^2 = k T / m + vmic^2 / 2 (microturbulence ``vmic`` given as the
    most-probable speed of a Gaussian velocity field, as usual).
    """
    v_th2 = (K_CGS / AMU_CGS * 1e-10) * temperature / mass_amu  # (km/s)^2
    return jnp.sqrt(v_th2 + 0.5 * vmic**2)


# Default damping where a line list gives none (see lorentz_fwhm).
DEFAULT_LOG_GAMMA_STARK = -6.0
DEFAULT_LOG_GAMMA6 = -7.7


def lorentz_fwhm(
    log_gamma_rad,
    log_gamma_stark,
    vdw_log_gamma6,
    abo_sigma,
    abo_alpha,
    is_abo,
    mass_amu,
    temperature,
    n_e,
    n_h,
    vdw_scale,
):
    """Total Lorentzian FWHM in angular frequency [rad s^-1] for every line.

    Gamma = Gamma_rad + Gamma_4 n_e (T / 1e4)^{1/6} + Gamma_6, with the van der
    Waals term either from the ABO theory (Anstee & O'Mara 1995; Barklem et al.
    2000),

        Gamma_6 = 2 (4/pi)^{alpha/2} Gamma((4 - alpha)/2) v0 sigma a0^2 (vbar/v0)^{1 - alpha} n_H,

    with v0 = 10 km/s and vbar the mean relative speed of the line atom and a
    hydrogen atom, or from the tabulated ``log10(gamma_6/N_H)`` at 10^4 K,
    scaled as (T / 1e4)^{0.3}. ``vdw_scale`` multiplies Gamma_6 (the classical
    enhancement factor; 1 for ABO lines is applied through the same factor).

    Missing constants are filled by the caller before this function:
    ``Gamma_rad = 2.223e15 / lambda^2`` (classical, lambda in A),
    log Gamma_4 = -6.0 and log Gamma_6 = -7.7 (typical values for FGK metal
    lines; the Unsoeld approximation needs upper-level data the lists do not
    carry consistently).

    Args:
        per-line arrays (n,); ``temperature`` [K], ``n_e``, ``n_h`` [cm^-3]
        and ``vdw_scale`` scalars.
    """
    gamma_rad = jnp.power(10.0, log_gamma_rad)
    gamma_stark = jnp.power(10.0, log_gamma_stark) * n_e * (temperature / 1e4) ** (1.0 / 6.0)
    gamma6_simple = jnp.power(10.0, vdw_log_gamma6) * n_h * (temperature / 1e4) ** 0.3
    inv_mu = 1.0 / 1.008 + 1.0 / mass_amu
    vbar = jnp.sqrt((8.0 * K_CGS / (np.pi * AMU_CGS)) * temperature * inv_mu)  # cm/s
    v0 = 1e6
    alpha = abo_alpha
    gamma6_abo = (
        2.0
        * jnp.power(4.0 / np.pi, 0.5 * alpha)
        * jnp.exp(gammaln(0.5 * (4.0 - alpha)))
        * v0
        * abo_sigma
        * A0_CM**2
        * jnp.power(vbar / v0, 1.0 - alpha)
        * n_h
    )
    gamma6 = jnp.where(is_abo, gamma6_abo, gamma6_simple)
    return gamma_rad + gamma_stark + vdw_scale * gamma6


def line_center_strength(
    wave,
    loggf,
    chi,
    log_abundance,
    log_stage_fraction,
    partition,
    temperature,
    kappa_cont,
):
    """Integrated line-to-continuum opacity ratio of every line [A].

    The line opacity per hydrogen atom integrated over wavelength,
    ``(pi e^2 / m_e c) gf (lambda^2 / c) N_l / N_H (1 - exp(-h c / lambda k T))``,
    divided by the continuum opacity per hydrogen atom at the line. Multiplied
    by an area-normalized profile [1/A] it gives the dimensionless ratio
    ``eta(lambda)`` that enters the residual flux.

    Args:
        wave: (n,) [A]; loggf, chi [eV], log_abundance (log10 N_X/N_H),
            log_stage_fraction (log10), partition: (n,); temperature scalar [K];
            kappa_cont (n,) continuum opacity per H nucleus at the line
            (absorption per neutral H times the neutral fraction, plus
            Thomson scattering) in units of ``KAPPA_UNIT`` = 1e-26 cm^2.
    """
    lam_cm = wave * 1e-8
    # h c / k = 1.4388 cm K kept as one constant: products of tiny cgs constants
    # underflow in float32 derivatives.
    stim = -jnp.expm1(-(H_CGS * C_CGS / K_CGS * 1e8) / (wave * temperature))
    log_pop = (
        log_abundance
        + log_stage_fraction
        - jnp.log10(partition)
        - chi / (K_EV * temperature * np.log(10.0))
    )
    # log10 of lambda^2 / c [cm s] * 1e8 [A/cm] computed in logs (float32-safe).
    log_sigma = (
        np.log10(PI_E2_MC * 1e8 / C_CGS) + loggf + 2.0 * jnp.log10(lam_cm) + jnp.log10(stim)
    )
    log_kappa = jnp.log10(kappa_cont) + np.log10(KAPPA_UNIT)
    return jnp.power(10.0, jnp.clip(log_sigma + log_pop - log_kappa, -40.0, 30.0))
