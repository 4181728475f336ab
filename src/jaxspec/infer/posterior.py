"""``BinaryPosterior``: NUTS draws of one spectrum with diagnostics, modes, flags and the model band.

Draws are stored per parameter as (chain, draw) arrays in physical units.
Modes are reported, never hidden, in one of two ways:

* Chains that move between modes (the sampler's mode jumps between the
  fit's optima, :func:`jaxspec.infer.kernel.mode_jump`): every draw is
  assigned to the nearest mode centre; modes holding at least
  ``MODE_MIN_WEIGHT`` of the draws are listed with that fraction as their
  weight (``source: "draws"``; a sampled estimate of the posterior mass),
  and r_hat and ESS are those of all chains, which all sample the whole
  posterior.
* Chains that stay apart (modes the jumps do not connect): chains are
  grouped into modes (:func:`jaxspec.infer.diagnostics.find_modes`), each
  mode's weight is a Laplace estimate from its draws (``source: "chains"``),
  and r_hat is judged within every mode (a one-chain mode on its two
  halves; the r_hat across all chains is still shown: it measures the
  disagreement between modes, not a sampling failure).

With more than one mode, ``multimodal`` is True.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from jaxspec.infer.diagnostics import ess_bulk, ess_tail, find_modes, mode_log_mass, rhat
from jaxspec.infer.init import MODE_KEYS

__all__ = ["BinaryPosterior", "FLAGS", "RHAT_MAX", "ESS_MIN", "DIVERGENCE_MAX"]

RHAT_MAX = 1.01
ESS_MIN = 400.0
DIVERGENCE_MAX = 0.01  # largest acceptable fraction of divergent transitions
MODE_MIN_WEIGHT = 0.01  # a mode visited by the jumping chains is listed when it holds this fraction of draws

#: Bit flags of ``BinaryPosterior.flag``, ``{name: bit}`` (0 = all well); r_hat, low_ess and
#: divergences mark a posterior that is not converged, multimodal is information only.
FLAGS = {
    "r_hat": 1,  # r_hat above RHAT_MAX within a mode (chains, or halves of a chain, disagree: not converged)
    "low_ess": 2,  # bulk ESS below ESS_MIN for a parameter (of the whole posterior, or of the main mode)
    "divergences": 4,  # more than DIVERGENCE_MAX of the transitions diverged
    "tree_depth": 8,  # more than 5 % of the transitions hit the maximum tree depth
    "multimodal": 16,  # the posterior has more than one mode (see .modes); not a failure
}
_FAILURE = FLAGS["r_hat"] | FLAGS["low_ess"] | FLAGS["divergences"]


@dataclasses.dataclass
class BinaryPosterior:
    """Posterior draws of a binary's parameters for one spectrum.

    Attributes:
        samples: ``{name: (chains, draws) float64}`` for every sampled parameter.
        names, units: sampled parameter names (the model's free ones, plus
            ``error_scale`` when sampled) and their units.
        fixed: ``{name: value}`` of fixed parameters.
        log_density: (chains, draws) log posterior in the sampler's unconstrained space.
        diverging: (chains, draws) divergent transitions.
        num_steps, tree_depth: (chains, draws) leapfrog steps and NUTS tree depth.
        accept_prob: (chains, draws) acceptance statistic.
        step_size: (chains,) adapted NUTS step size.
        warmup_divergences: (chains,) divergences during warmup.
        warmup_steps: (chains,) leapfrog steps during warmup.
        chain_mode: (chains,) mode index of each chain (0: the mode with most chains;
            all 0 when the chains move between modes).
        chain_start: (chains,) index of the fit optimum each chain started from.
        draw_mode: (chains, draws) mode index of each draw when the chains move
            between modes (``source == "draws"``), else -1.
        jumped: (chains, draws) an accepted mode jump preceded the draw.
        modes: one dict per mode: ``chains`` (those with draws in it), ``weight``
            (posterior mass, summing to 1: the fraction of draws, or a Laplace
            estimate when chains stay in their modes), ``log_mass`` (Laplace),
            ``medians``, ``source`` (``"draws"`` or ``"chains"``, see the module doc).
        fit_params: the fit's best values; optima: the fit optima the chains started from.
        wave, flux, ivar: the data, (P,) each: vacuum wavelengths [A], the
            observed flux (continuum not divided out; masked pixels set to 1)
            and its inverse variance (0 = masked).
        model_median: (P,) per-pixel posterior median
            of the model (with continuum); model_band: (4, P) its 2.5, 16, 84,
            97.5 percentiles; predictive_band: (2, P) 2.5 and 97.5 percentiles of
            model plus noise (posterior predictive); model_1, model_2, continuum:
            (P,) the two stars' contributions (with continuum) and the continuum
            at the posterior medians.
        prior: text of the prior of each parameter; settings: sampler settings;
            timing: seconds: ``fit_s`` the fit, ``sample_s`` the sampling (wall
            time), ``chains_s`` the chain programs' calls summed (with threads,
            one call per chain: the core-seconds spent; not in a vectorized
            batch, whose chains run as one program for many spectra).
    """

    samples: dict
    names: tuple
    units: tuple
    fixed: dict
    log_density: np.ndarray
    diverging: np.ndarray
    num_steps: np.ndarray
    tree_depth: np.ndarray
    accept_prob: np.ndarray
    step_size: np.ndarray
    warmup_divergences: np.ndarray
    warmup_steps: np.ndarray
    chain_mode: np.ndarray
    chain_start: np.ndarray
    draw_mode: np.ndarray
    jumped: np.ndarray
    modes: list
    fit_params: dict
    optima: list
    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    model_median: np.ndarray
    model_band: np.ndarray
    predictive_band: np.ndarray
    model_1: np.ndarray
    model_2: np.ndarray
    continuum: np.ndarray
    prior: tuple = ()
    settings: dict = dataclasses.field(default_factory=dict)
    timing: dict = dataclasses.field(default_factory=dict)

    # ---------------------------------------------------------------- construction
    @classmethod
    def build(cls, sampler, trace, *, fit, wave, flux, ivar, optima, chain_start, chain_method, seed,
              n_predictive, timing, modes=None):
        """Assemble a posterior from the chains of one spectrum (used by the samplers).

        Args:
            sampler: the sampler that ran the chains (its prior, binary model
                and settings; private to :mod:`jaxspec.infer.sample`).
            trace: a :class:`~jaxspec.infer.kernel.ChainTrace` (numpy), draws
                ``z`` (C, S, d) in the unconstrained space.
            fit: the single-spectrum :class:`~jaxspec.fit.BinaryFit` the
                chains started from.
            wave: (P,) vacuum wavelengths [A].
            flux, ivar: (P,) observed flux (continuum not divided out) and
                inverse variance, as prepared by
                :func:`~jaxspec.fit.binary.prepare_spectrum`.
            optima: the fit optima the chains started from, ``{name: value}``
                each.
            chain_start: (C,) index into ``optima`` of each chain's start.
            chain_method: how the chains ran (kept in ``settings``).
            seed: random seed (the noise of the predictive band).
            n_predictive: draws used for the model and predictive bands.
            timing: ``{"fit_s": ..., "sample_s": ..., ...}`` seconds.
            modes: (K, d + 1, d) the mode jumps' centres and shapes
                (:func:`~jaxspec.infer.kernel.pack_modes`), or None.

        Returns:
            The :class:`BinaryPosterior`.
        """
        import jax
        import jax.numpy as jnp

        spec = sampler.prior.spec
        z = np.asarray(trace.z, dtype=np.float64)
        n_chain, n_draw, dim = z.shape
        if not np.all(np.isfinite(z)):  # NUTS rejects non-finite proposals; this is a bug guard
            raise RuntimeError("non-finite draws in the NUTS trace")
        values = sampler.prior.physical(z)
        samples = {n: values[..., i] for i, n in enumerate(spec.free)}
        chain_mode = find_modes(samples, MODE_KEYS, floor={"rv_1": 0.5, "rv_2": 0.5, "flux_ratio": 0.01})
        lp = np.asarray(trace.log_density, dtype=np.float64)
        jumped = np.asarray(trace.jumped, dtype=bool)
        draw_mode = np.full((n_chain, n_draw), -1, dtype=np.int64)
        jump_modes, modes = modes, None
        if chain_mode.max() == 0 and jump_modes is not None and jumped.any():
            modes, draw_mode = _draw_modes(z, lp, samples, np.asarray(jump_modes, np.float64))
        if modes is None:
            draw_mode[:] = -1
            modes = _chain_modes(z, lp, samples, chain_mode)

        # Model band and predictive band from draws spread over all chains.
        flat = z.reshape(-1, dim)
        pick = np.linspace(0, flat.shape[0] - 1, min(int(n_predictive), flat.shape[0])).astype(int)
        d, w_ = jnp.asarray(flux, sampler.dtype), jnp.asarray(ivar, sampler.dtype)
        draws = np.asarray(sampler._predict(jnp.asarray(flat[pick], sampler.dtype), d, w_), dtype=np.float64)
        scale = samples["error_scale"].ravel()[pick][:, None] if "error_scale" in samples else 1.0
        with np.errstate(divide="ignore"):
            sigma = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), 0.0)
        noisy = draws + np.random.default_rng(seed).standard_normal(draws.shape) * sigma * scale
        med_theta = {n: np.median(samples[n]) for n in spec.free}
        med_theta.update({p.name: p.fixed for p in spec.params if p.fixed is not None})
        theta = {n: jnp.asarray(v, sampler.dtype) for n, v in med_theta.items()}
        parts = jax.device_get(sampler._components(theta, d, w_))
        c1, c2, cont = (np.asarray(x, dtype=np.float64) for x in parts)
        steps = np.asarray(trace.num_steps, dtype=np.int64)
        s = sampler.settings
        return cls(
            samples=samples, names=tuple(spec.free), units=tuple(spec[n].unit for n in spec.free),
            fixed={p.name: float(p.fixed) for p in spec.params if p.fixed is not None},
            log_density=lp, diverging=np.asarray(trace.diverging, dtype=bool), num_steps=steps,
            tree_depth=np.ceil(np.log2(steps + 1)).astype(np.int64),
            accept_prob=np.asarray(trace.accept_prob, dtype=np.float64),
            step_size=np.asarray(trace.step_size, dtype=np.float64),
            warmup_divergences=np.asarray(trace.warmup_divergences, dtype=np.int64),
            warmup_steps=np.asarray(trace.warmup_steps, dtype=np.int64),
            chain_mode=chain_mode, chain_start=np.asarray(chain_start, dtype=np.int64), draw_mode=draw_mode,
            jumped=jumped, modes=modes,
            fit_params={n: float(fit.params[n]) for n in fit.names}, optima=list(optima),
            wave=np.asarray(wave, dtype=np.float64), flux=np.asarray(flux, dtype=np.float64),
            ivar=np.asarray(ivar, dtype=np.float64),
            model_median=np.median(draws, axis=0),
            model_band=np.percentile(draws, [2.5, 16, 84, 97.5], axis=0),
            predictive_band=np.percentile(noisy, [2.5, 97.5], axis=0), model_1=c1, model_2=c2, continuum=cont,
            prior=tuple(sampler.prior.describe()),
            settings={"num_warmup": s.num_warmup, "num_samples": s.num_samples, "num_chains": n_chain,
                      "chain_method": chain_method, "target_accept_prob": s.target_accept_prob,
                      "max_tree_depth": s.max_tree_depth, "warmup_tree_depth": s.warmup_tree_depth,
                      "continuum": s.continuum,
                      "dense_mass": s.dense_mass, "mode_jumps": s.mode_jumps,
                      "seed": int(seed), "ref_wave": float(sampler.bm.ref_wave)},
            timing=dict(timing),
        )

    # ---------------------------------------------------------------- shape
    @property
    def num_chains(self) -> int:
        """Number of chains C (the first axis of every ``(chains, draws)`` array)."""
        return int(self.log_density.shape[0])

    @property
    def num_draws(self) -> int:
        """Draws kept per chain S (the second axis of every ``(chains, draws)`` array)."""
        return int(self.log_density.shape[1])

    def __repr__(self) -> str:
        return (f"BinaryPosterior({self.num_chains} chains x {self.num_draws} draws, "
                f"{len(self.modes)} mode(s), flag={self.flag} [{self.flag_message}])")

    # ---------------------------------------------------------------- diagnostics
    @property
    def multimodal(self) -> bool:
        """True when the posterior has more than one mode (see :attr:`modes`)."""
        return len(self.modes) > 1

    @property
    def chains_mix(self) -> bool:
        """True when every chain samples the whole posterior (one mode, or chains moving between
        the modes): r_hat and ESS over all chains are then the measure of convergence."""
        return not self.multimodal or self.modes[0].get("source") == "draws"

    def mode_samples(self, k: int = 0) -> dict:
        """Draws of mode ``k`` only: ``{name: (chains in the mode, draws)}``, or ``{name: (1, n)}``
        when the chains move between modes (the mode's draws from every chain)."""
        if self.modes[k].get("source") == "draws":
            sel = self.draw_mode == k
            return {n: v[sel][None, :] for n, v in self.samples.items()}
        ch = self.modes[k]["chains"]
        return {n: v[ch] for n, v in self.samples.items()}

    def diagnostics(self) -> dict:
        """Per parameter: r_hat and ESS over all chains, and within modes.

        ``r_hat_mode`` is the largest split r_hat within any mode (a mode of one
        chain is judged on that chain's two halves, so no mode goes unchecked);
        ``ess_bulk_mode`` and ``ess_tail_mode`` are those of the main mode
        (mode 0). With one mode, or chains that move between the modes
        (:attr:`chains_mix`), the within-mode values equal the pooled ones.

        Returns:
            ``{name: {"r_hat", "ess_bulk", "ess_tail", "r_hat_mode", "ess_bulk_mode", "ess_tail_mode"}}``.
        """
        return {n: dict(v) for n, v in self._diagnostics.items()}

    @functools.cached_property
    def _diagnostics(self) -> dict:
        out = {}
        main = self.modes[0]["chains"]
        for n in self.names:
            x = self.samples[n]
            row = {"r_hat": rhat(x), "ess_bulk": ess_bulk(x), "ess_tail": ess_tail(x)}
            if self.chains_mix:
                row.update({f"{k}_mode": row[k] for k in ("r_hat", "ess_bulk", "ess_tail")})
                out[n] = row
                continue
            xm = x[main]
            within = [rhat(x[m["chains"]]) for m in self.modes]
            # NaN only when every mode's draws are constant (as rhat itself)
            worst = float(np.nanmax(within)) if np.any(np.isfinite(within)) else float("nan")
            row.update(r_hat_mode=worst, ess_bulk_mode=ess_bulk(xm), ess_tail_mode=ess_tail(xm))
            out[n] = row
        return out

    @property
    def min_ess_bulk(self) -> float:
        """The smallest bulk ESS over the parameters, of the quantity :attr:`flag` judges (pooled over
        all chains when they mix between modes, else the main mode's)."""
        key = "ess_bulk" if self.chains_mix else "ess_bulk_mode"
        v = [d[key] for d in self._diagnostics.values() if np.isfinite(d[key])]
        return float(min(v)) if v else float("nan")

    @property
    def flag(self) -> int:
        """Bit flags (see :data:`FLAGS`; 0 = all well)."""
        diag = self._diagnostics
        flag = 0
        key = "" if self.chains_mix else "_mode"
        r = [v[f"r_hat{key}"] for v in diag.values()]
        if np.any(np.array(r) > RHAT_MAX):
            flag |= FLAGS["r_hat"]
        ess = [v[f"ess_bulk{key}"] for v in diag.values()]
        if np.any(np.array(ess) < ESS_MIN):
            flag |= FLAGS["low_ess"]
        if self.diverging.mean() > DIVERGENCE_MAX:
            flag |= FLAGS["divergences"]
        if np.mean(self.tree_depth >= self.settings.get("max_tree_depth", 99)) > 0.05:
            flag |= FLAGS["tree_depth"]
        if self.multimodal:
            flag |= FLAGS["multimodal"]
        return flag

    @property
    def flag_message(self) -> str:
        """The set bits of :attr:`flag` in words (e.g. ``"low ess, multimodal"``), ``"ok"`` when 0."""
        f = self.flag
        return ", ".join(k.replace("_", " ") for k, b in FLAGS.items() if f & b) or "ok"

    @property
    def converged(self) -> bool:
        """No r_hat, ESS or divergence flag (a multimodal posterior can be converged within its modes)."""
        return not (self.flag & _FAILURE)

    # ---------------------------------------------------------------- tables
    def quantiles(self, q=(0.025, 0.16, 0.5, 0.84, 0.975)) -> dict:
        """Quantiles of every sampled parameter over all draws (chains pooled).

        Args:
            q: quantile levels in [0, 1], a sequence of Q values (default 2.5,
                16, 50, 84 and 97.5 %).

        Returns:
            ``{name: (Q,) array}`` in the parameters' units (:attr:`units`).
        """
        return {n: np.quantile(self.samples[n], q) for n in self.names}

    def interval(self, name: str, level: float = 0.68) -> tuple[float, float]:
        """Central credible interval of one parameter.

        One mode, or chains that move between modes: all draws pooled. Chains
        that stay in their modes: each mode's draws weighted by its weight
        (:attr:`modes`), so a mode's share does not depend on how many chains
        happened to start there.

        Args:
            name: a sampled parameter (one of :attr:`names`).
            level: probability inside the interval (default 0.68: the 16 to 84 %
                quantiles).

        Returns:
            ``(low, high)`` in the parameter's unit.
        """
        a = 0.5 * (1.0 - level)
        x = self.samples[name]
        if self.chains_mix:
            lo, hi = np.quantile(x, [a, 1.0 - a])
            return float(lo), float(hi)
        w = np.zeros(x.shape)
        for m in self.modes:
            w[m["chains"]] = m["weight"] / (len(m["chains"]) * x.shape[1])
        order = np.argsort(x, axis=None)
        cdf = np.cumsum(w.ravel()[order])
        xs = x.ravel()[order]
        lo, hi = np.interp([a, 1.0 - a], cdf - 0.5 * w.ravel()[order], xs)
        return float(lo), float(hi)

    def summary(self) -> str:
        """Table: mean, sd, 2.5/16/50/84/97.5 % quantiles, bulk and tail ESS, r_hat (and, when
        multimodal, the worst r_hat within a mode), then divergences, step size, tree depth, modes
        and flags."""
        diag = self.diagnostics()
        mm = self.multimodal
        head = (f"{'parameter':11s} {'mean':>10s} {'sd':>9s} {'2.5%':>10s} {'16%':>10s} {'50%':>10s} "
                f"{'84%':>10s} {'97.5%':>10s} {'ess_bulk':>8s} {'ess_tail':>8s} {'r_hat':>6s}")
        mm = mm and not self.chains_mix  # a separate within-mode r_hat only for chains that stay apart
        lines = [head + (f" {'r_hat_mode':>11s}" if mm else "") + "  unit"]
        for n, u in zip(self.names, self.units, strict=True):
            x = self.samples[n]
            q = np.quantile(x, [0.025, 0.16, 0.5, 0.84, 0.975])
            d = diag[n]
            row = (f"{n:11s} {x.mean():10.4g} {x.std():9.3g} " + " ".join(f"{v:10.4g}" for v in q)
                   + f" {d['ess_bulk']:8.0f} {d['ess_tail']:8.0f} {d['r_hat']:6.3f}")
            lines.append(row + (f" {d['r_hat_mode']:11.3f}" if mm else "") + f"  {u}")
        n_div = int(self.diverging.sum())
        steps = ", ".join(f"{s:.3g}" for s in self.step_size)
        method = self.settings.get("chain_method")
        lines.append(f"{self.num_chains} chains x {self.num_draws} draws ({method}); "
                     f"divergences {n_div} ({n_div / self.diverging.size:.1%}) + "
                     f"{int(self.warmup_divergences.sum())} in warmup; step size {steps}; tree depth mean "
                     f"{self.tree_depth.mean():.1f}, max {int(self.tree_depth.max())}; "
                     f"continuum {self.settings.get('continuum')}")
        if self.settings.get("rewarms"):
            lines.append("warmed up again after a chain diverged on > 1 % of its draws (one metric and step "
                         "size for all chains; the earlier draws were discarded)")
        if self.multimodal and self.chains_mix:
            n_jump = int(self.jumped.sum())
            lines.append(f"MULTIMODAL: {len(self.modes)} modes; the chains move between them ({n_jump} mode "
                         "jumps), weights are fractions of the draws")
            for k, m in enumerate(self.modes):
                med = ", ".join(f"{n} {m['medians'][n]:.4g}" for n in MODE_KEYS if n in m["medians"])
                lines.append(f"  mode {k}: chains {m['chains']}, weight {m['weight']:.3f} (draws), {med}")
        elif mm:
            lines.append(f"MULTIMODAL: {len(self.modes)} modes (chains that disagree are not averaged; "
                         "r_hat over all chains measures the disagreement)")
            for k, m in enumerate(self.modes):
                med = ", ".join(f"{n} {m['medians'][n]:.4g}" for n in MODE_KEYS if n in m["medians"])
                lines.append(f"  mode {k}: chains {m['chains']}, weight {m['weight']:.3f} (Laplace), {med}")
        if self.fixed:
            lines.append("fixed: " + ", ".join(f"{k} = {v:g}" for k, v in self.fixed.items()))
        lines.append(f"flux_ratio is defined at {self.settings.get('ref_wave', float('nan')):.1f} A")
        flag = self.flag
        limits = f"r_hat <= {RHAT_MAX}, bulk ESS >= {ESS_MIN:g}, divergences <= {DIVERGENCE_MAX:.0%}"
        head = "NOT CONVERGED: " if flag & _FAILURE else "flags: "
        lines.append(f"{head}{self.flag_message} ({limits})")
        return "\n".join(lines)

    # ---------------------------------------------------------------- output (see io.py, plot.py)
    def to_arviz(self):
        """An ``arviz.InferenceData`` (posterior, sample_stats, observed_data); needs arviz."""
        from jaxspec.infer.io import to_arviz

        return to_arviz(self)

    def save(self, path) -> None:
        """Write to HDF5 (``.h5``/``.hdf5``; h5py) or netCDF (``.nc``; arviz's InferenceData with the rest
        as attributes). :meth:`load` reads either back.

        Args:
            path: output file; its suffix chooses the format.
        """
        from jaxspec.infer.io import save

        save(self, path)

    @classmethod
    def load(cls, path) -> BinaryPosterior:
        """Read a posterior written by :meth:`save`.

        Args:
            path: an ``.h5``/``.hdf5`` or ``.nc`` file.
        """
        from jaxspec.infer.io import load

        return load(path)

    def plot_corner(self, path=None, *, truths=None, names=None, mode=None, **kwargs):
        """Corner plot (``corner`` package); see :func:`jaxspec.infer.plot.plot_corner`.

        Args:
            path: file to write (the figure is then closed), or None to return it open.
            truths: optional ``{name: value}`` drawn as lines.
            names: parameters to show (default: all sampled ones).
            mode: show only this mode's chains (default: all chains).
            **kwargs: passed to ``corner.corner``.

        Returns:
            The matplotlib figure.
        """
        from jaxspec.infer.plot import plot_corner

        return plot_corner(self, path, truths=truths, names=names, mode=mode, **kwargs)

    def plot_fit(self, path=None):
        """Data, posterior-median model, both stars, model and predictive bands, residuals.

        Args:
            path: file to write (the figure is then closed), or None to return it open.

        Returns:
            The matplotlib figure.
        """
        from jaxspec.infer.plot import plot_fit

        return plot_fit(self, path)


def _chain_modes(z, lp, samples, chain_mode):
    """Modes as groups of chains, weighted by Laplace estimates of their mass."""
    dim = z.shape[-1]
    modes = []
    for k in range(int(chain_mode.max()) + 1):
        ch = np.flatnonzero(chain_mode == k)
        log_mass = mode_log_mass(z[ch].reshape(-1, dim), lp[ch].ravel())
        med = {n: float(np.median(v[ch])) for n, v in samples.items()}
        modes.append({"chains": ch.tolist(), "log_mass": log_mass, "medians": med, "source": "chains"})
    lm = np.array([m["log_mass"] for m in modes])
    w = np.exp(lm - np.max(lm)) if np.any(np.isfinite(lm)) else np.ones(len(modes))
    for m, wk in zip(modes, w / w.sum(), strict=True):
        m["weight"] = float(wk)
    return modes


def _draw_modes(z, lp, samples, jump_modes):
    """Modes of chains that jump between them: each draw goes to the nearest mode centre (each in
    its own metric, as :func:`~jaxspec.infer.kernel.mode_region`); modes holding at least
    MODE_MIN_WEIGHT of the draws are listed (the draws of rarer ones go to the nearest listed one),
    weighted by their fraction of the draws, heaviest first.
    Returns ``(modes, draw_mode)``, or ``(None, None)`` with fewer than two usable modes."""
    n_chain, n_draw, dim = z.shape
    usable = np.all(np.isfinite(jump_modes), axis=(1, 2))
    idx = np.flatnonzero(usable)
    if len(idx) < 2:
        return None, None
    flat = z.reshape(-1, dim)
    d2 = np.stack([np.sum(np.linalg.solve(jump_modes[k, 1:], (flat - jump_modes[k, 0]).T) ** 2, axis=0)
                   for k in idx], axis=1)  # (n, K')
    label = np.argmin(d2, axis=1)
    frac = np.bincount(label, minlength=len(idx)) / len(label)
    keep = np.flatnonzero(frac >= MODE_MIN_WEIGHT)
    keep = keep[np.argsort(-frac[keep], kind="stable")]
    draw_mode = np.argmin(d2[:, keep], axis=1).reshape(n_chain, n_draw).astype(np.int64)
    modes = []
    for i in range(len(keep)):
        sel = draw_mode == i
        ch = np.flatnonzero(sel.any(axis=1)).tolist()
        med = {n: float(np.median(v[sel])) for n, v in samples.items()}
        modes.append({"chains": ch, "weight": float(sel.mean()), "medians": med, "source": "draws",
                      "log_mass": mode_log_mass(z[sel], lp[sel]) if sel.sum() > dim + 1 else float("nan")})
    return modes, draw_mode
