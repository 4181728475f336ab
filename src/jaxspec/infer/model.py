"""The posterior density of a binary: priors from the :class:`~jaxspec.models.ParamSpec`, one likelihood.

Parameters are those of the fitter's :class:`~jaxspec.models.BinaryModel`
(``bm.spec``); there is no second list. :func:`make_prior` turns the spec's
bounds into a stated, overridable prior:

* every free parameter is uniform over a window: by default its spec bounds
  (the spectral model's label box, rv within +-``rv_max``, vsini in
  [0, ``vsini_max``], ``flux_ratio`` in [0, 1]: component 1 is the brighter
  star, so labels cannot switch);
* ``priors={"rv_1": (-100, 100)}`` narrows a window (it must lie inside the
  spec bounds; ``flux_ratio``'s upper end can never exceed 1);
  ``priors={"teff_1": numpyro.distributions.Normal(5800, 100)}`` multiplies
  the uniform window by that density (a truncated prior);
* ``error_scale=True`` adds a parameter ``error_scale`` (uniform in
  [0.5, 5] unless overridden) that multiplies every 1-sigma error: for
  under- or over-estimated uncertainties.

The likelihood is the fitter's objective: the same model flux, the same
multiplicative Chebyshev continuum solved by weighted linear least squares
(:func:`jaxspec.fit.continuum.solve_continuum`), the same chi-square as
:func:`jaxspec.fit.chi2_at`. ``continuum="marginal"`` (the default)
integrates the continuum coefficients out analytically under a flat prior:
the Gaussian integral adds ``-0.5 log det(A^T W A)`` (``A = diag(model) D``)
to ``-0.5 chi2``, so the continuum's uncertainty widens the posterior as it
should. ``continuum="profile"`` uses ``-0.5 chi2`` at the best continuum
(the profile likelihood; slightly too narrow when the continuum and the
labels trade off).

Sampling happens in an unconstrained space: each free parameter of window
[lo, hi] is ``theta = lo + (hi - lo) Phi(z)`` with ``Phi`` the standard normal
CDF (:meth:`Prior.from_unconstrained`), and :meth:`Prior.log_density` adds
the log-Jacobian ``log(hi - lo) + log phi(z)``, so the prior is uniform in
physical units and exactly a standard normal in ``z``. Why this map and not
the fitter's logistic one (:meth:`ParamSpec.from_unconstrained`): where the
likelihood is flat up to a bound (vsini unresolved near 0, logg near the top
of the label box) the posterior in ``z`` takes the prior's tail, which is
Gaussian here and exponential under the logistic map. NUTS with a dense mass
matrix mixes Gaussian tails better: on ``benchmarks/bench_sample.py``'s
default case (vsini 4 and 8 km/s, logg_2 4.6 of a box ending at 5.0) the
slowest bulk ESS rose from 779 to 1026 for the same 4 x (500 + 500)
iterations and the same number of gradient evaluations.
:func:`numpyro_model` writes the same density in physical units as a NumPyro
model (uniform sample sites and one ``numpyro.factor`` for the likelihood);
the tests check the two agree.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxspec.fit.continuum import solve_continuum
from jaxspec.models.params import Param, ParamSpec

__all__ = ["CONTINUUM_MODES", "ERROR_SCALE_BOUNDS", "Prior", "log_likelihood", "make_prior", "numpyro_model"]

CONTINUUM_MODES = ("marginal", "profile")
ERROR_SCALE_BOUNDS = (0.5, 5.0)


@dataclasses.dataclass(frozen=True)
class Prior:
    """Priors of the sampled parameters.

    Attributes:
        spec: a :class:`ParamSpec` with the model's parameters (same names and
            order) whose bounds are the prior windows, plus ``error_scale``
            when sampled; its free parameters are the sampled ones.
        densities: ``{name: numpyro Distribution}`` multiplied into the
            uniform window of those parameters.
    """

    spec: ParamSpec
    densities: dict = dataclasses.field(default_factory=dict)

    @property
    def has_error_scale(self) -> bool:
        """True when ``error_scale`` (a factor on the errors) is a sampled parameter."""
        return "error_scale" in self.spec.names and self.spec["error_scale"].fixed is None

    def describe(self) -> list[str]:
        """One line per free parameter: ``"teff_1 ~ Uniform(4000, 7500) K"`` and the like."""
        out = []
        for n in self.spec.free:
            p = self.spec[n]
            text = f"{n} ~ Uniform({p.lower:g}, {p.upper:g}) {p.unit}".rstrip()
            if n in self.densities:
                text += f" x {self.densities[n]!r}"
            out.append(text)
        return out

    def log_prior(self, theta: dict):
        """Log density of the non-uniform factors at physical values (0 without any).

        Args:
            theta: ``{name: value}`` of the parameters in physical units (at
                least those with a density in :attr:`densities`).

        Returns:
            Scalar sum of the densities' ``log_prob`` (the uniform windows add
            a constant and are left out).
        """
        lp = jnp.zeros((), jnp.result_type(float))
        for n, d in self.densities.items():
            lp = lp + jnp.sum(d.log_prob(theta[n]))
        return lp

    def from_unconstrained(self, z) -> dict:
        """All parameters of :attr:`spec` from unconstrained values of the free ones (jax):
        ``theta = lo + (hi - lo) Phi(z)`` (module docstring); fixed ones filled in.

        Args:
            z: (n_free,) unconstrained values.
        """
        lo, hi = (jnp.asarray(b, z.dtype) for b in self.spec.bounds().T)
        v = lo + (hi - lo) * jax.scipy.special.ndtr(z)
        out = {n: v[i] for i, n in enumerate(self.spec.free)}
        for p in self.spec.params:
            if p.fixed is not None:
                out[p.name] = jnp.asarray(p.fixed, dtype=v.dtype)
        return out

    def physical(self, z) -> np.ndarray:
        """Physical values (numpy, float64) of unconstrained draws ``z`` (..., n_free)."""
        from scipy.special import ndtr

        lo, hi = self.spec.bounds().T
        return lo + (hi - lo) * ndtr(np.asarray(z, dtype=np.float64))

    def to_unconstrained(self, values: dict, margin: float = 1e-6) -> np.ndarray:
        """(n_free,) unconstrained values (numpy) of physical ``values``; values within ``margin``
        (a fraction of the window) of a bound are moved inside first."""
        from scipy.special import ndtri

        lo, hi = self.spec.bounds().T
        v = np.array([float(values[n]) for n in self.spec.free])
        return ndtri(np.clip((v - lo) / (hi - lo), margin, 1.0 - margin))

    def dtheta_dz(self, z) -> np.ndarray:
        """(n_free,) derivative of the physical values with respect to ``z`` (numpy)."""
        lo, hi = self.spec.bounds().T
        z = np.asarray(z, dtype=np.float64)
        return (hi - lo) * np.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi)

    def log_jacobian(self, z):
        """``sum log |d theta / d z|`` of the map, (...,) for z of shape (..., n_free)."""
        lo, hi = (jnp.asarray(b, z.dtype) for b in self.spec.bounds().T)
        return jnp.sum(jnp.log(hi - lo) - 0.5 * z**2 - 0.5 * np.log(2.0 * np.pi), axis=-1)

    def log_density(self, z, loglike_fn):
        """Log posterior density (up to a constant) in the unconstrained space.

        Args:
            z: (n_free,) unconstrained values of :attr:`spec`'s free parameters.
            loglike_fn: ``theta -> log likelihood`` (scalar).
        """
        theta = self.from_unconstrained(z)
        return loglike_fn(theta) + self.log_prior(theta) + self.log_jacobian(z)


def make_prior(spec: ParamSpec, priors: dict | None = None, *, error_scale: bool = False) -> Prior:
    """The default prior of a model's spec, with overrides.

    Args:
        spec: the binary model's :class:`ParamSpec` (``fit``'s ``bm.spec``).
        priors: ``{name: (low, high)}`` to narrow a uniform window, or
            ``{name: numpyro.distributions.Distribution}`` for a density
            (truncated to the window), or ``{name: ((low, high), dist)}`` for both.
        error_scale: also sample a multiplicative error scale (see module doc);
            ``priors["error_scale"]`` may set its window.

    Returns:
        :class:`Prior`.

    Raises:
        ValueError: an unknown or fixed parameter, a window with low >= high,
            outside the spec bounds or with flux_ratio above 1, a non-finite
            bound, a density that is not a NumPyro distribution or not scalar.
    """
    priors = dict(priors or {})
    params = list(spec.params)
    if error_scale:
        params.append(Param("error_scale", "", *ERROR_SCALE_BOUNDS))
    elif "error_scale" in priors:
        raise ValueError("a prior on error_scale needs error_scale=True")
    full = ParamSpec(tuple(params))
    densities = {}
    new = []
    for p in full.params:
        if p.name not in priors:
            new.append(p)
            continue
        if p.fixed is not None:
            raise ValueError(f"parameter {p.name!r} is fixed at {p.fixed}; it has no prior")
        value = priors.pop(p.name)
        window, density = _split_prior(p.name, value)
        lo, hi = (p.lower, p.upper) if window is None else window
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"prior window of {p.name!r} must be finite with low < high, got ({lo}, {hi})")
        if p.name != "error_scale" and (lo < p.lower - 1e-9 or hi > p.upper + 1e-9):
            extra = " (flux_ratio <= 1: component 1 is the brighter star)" if p.name == "flux_ratio" else ""
            raise ValueError(f"prior window of {p.name!r} ({lo}, {hi}) lies outside the model's bounds "
                             f"({p.lower}, {p.upper}) {p.unit}{extra}")
        if p.name == "error_scale" and lo <= 0:
            raise ValueError(f"error_scale's prior window must be positive, got ({lo}, {hi})")
        new.append(dataclasses.replace(p, lower=float(lo), upper=float(hi)))
        if density is not None:
            densities[p.name] = density
    if priors:
        raise ValueError(f"priors for unknown parameters {sorted(priors)}; parameters are {full.names}")
    return Prior(ParamSpec(tuple(new)), densities)


def _split_prior(name, value):
    from numpyro.distributions import Distribution

    if isinstance(value, Distribution):
        window, density = None, value
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Distribution):
        window, density = value
    else:
        window, density = value, None
    if window is not None:
        try:
            lo, hi = (float(v) for v in window)
        except (TypeError, ValueError) as e:
            raise ValueError(f"prior of {name!r} must be (low, high), a numpyro Distribution or "
                             f"((low, high), Distribution); got {value!r}") from e
        window = (lo, hi)
    if density is not None and density.batch_shape + density.event_shape != ():
        raise ValueError(f"prior density of {name!r} must be scalar, got batch shape {density.batch_shape}")
    return window, density


def log_likelihood(bm, design, theta: dict, flux, ivar, *, continuum: str = "marginal"):
    """Gaussian log likelihood of one spectrum with the continuum solved (or integrated out).

    Args:
        bm: the :class:`~jaxspec.models.BinaryModel` (the fitter's ``bm``).
        design: (P, K) continuum design matrix (the fitter's ``design_np``).
        theta: all parameters of ``bm.spec`` [physical units]; an optional
            ``error_scale`` multiplies the 1-sigma errors.
        flux, ivar: (P,) observed flux and inverse variance (0 = masked).
        continuum: ``"marginal"`` or ``"profile"`` (see the module docstring).

    Returns:
        Scalar: ``-0.5 chi2 / s^2 - n_good ln s`` (``s`` the error scale, 1 if
        absent), minus ``0.5 log det(A^T W A / s^2)`` when marginal; constants
        that depend on neither theta nor s are dropped.
    """
    if continuum not in CONTINUUM_MODES:
        raise ValueError(f"continuum must be one of {CONTINUUM_MODES}, got {continuum!r}")
    m = bm.flux(theta)
    design = jnp.asarray(design, m.dtype)
    cont, _ = solve_continuum(m, flux, ivar, design)
    # The residual sum, not d'Wd - b'M^-1 b: no cancellation in float32 at high S/N.
    chi2 = jnp.sum(ivar * (m * cont - flux) ** 2)
    s = theta.get("error_scale")
    ll = -0.5 * chi2 if s is None else -0.5 * chi2 / s**2 - jnp.sum(ivar > 0) * jnp.log(s)
    if continuum == "marginal":
        a = m[:, None] * design
        ata = a.T @ (ivar[:, None] * a)
        # Columns without a usable pixel (a masked segment) get a unit diagonal: no volume.
        empty = jnp.diag(ata) <= 0
        ata = ata + jnp.diag(empty.astype(ata.dtype))
        ll = ll - jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(ata))))
        if s is not None:
            ll = ll + jnp.sum(~empty) * jnp.log(s)
    return ll


def numpyro_model(bm, design, prior: Prior, flux, ivar, *, continuum: str = "marginal"):
    """The same posterior as a NumPyro model (for NumPyro's own tools: ``MCMC(NUTS(model))``,
    ``Predictive``, ``log_density``).

    Sample sites are the free parameters of ``prior.spec`` (uniform over their
    windows, times any density of ``prior.densities``); one factor
    ``"log_likelihood"`` adds :func:`log_likelihood`.

    Args:
        bm, design, continuum: as :func:`log_likelihood`.
        prior: from :func:`make_prior` (built on ``bm.spec``).
        flux, ivar: (P,) data.
    """
    import numpyro
    import numpyro.distributions as dist

    theta = {}
    for p in prior.spec.params:
        if p.fixed is not None:
            theta[p.name] = jnp.asarray(p.fixed, jnp.result_type(float))
            continue
        theta[p.name] = numpyro.sample(p.name, dist.Uniform(p.lower, p.upper))
        if p.name in prior.densities:
            numpyro.factor(f"{p.name}_prior", prior.densities[p.name].log_prob(theta[p.name]))
    numpyro.factor("log_likelihood", log_likelihood(bm, design, theta, flux, ivar, continuum=continuum))
