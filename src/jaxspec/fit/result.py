"""``BinaryFit``: the result of :func:`jaxspec.fit_binary` and :func:`jaxspec.fit_binary_batch`.

One class serves one spectrum and a batch: every per-spectrum field carries
a leading batch axis ``(N, ...)`` in a batch result and none for a single
spectrum. It is a registered JAX pytree (array fields are leaves; the
parameter names, units and settings are static metadata), so results can go
through ``jax.tree_util`` functions, ``jax.device_get`` and the like.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

__all__ = ["BinaryFit", "FLAGS", "WARNINGS", "flag_messages"]

#: Bit flags of ``BinaryFit.flag``, ``{name: bit}`` (0 = all well; :func:`flag_messages` spells
#: a value out): 1-16 are set by the fit, 32-128 by survey runs for spectra not fitted.
FLAGS = {
    "not_converged": 1,  # the best binary start hit max_iter before the convergence test
    "non_finite": 2,  # the binary fit's cost, parameters or errors are not finite
    "single_not_converged": 4,  # the single-star fit hit max_iter
    "single_non_finite": 8,  # the single-star fit's cost, parameters or errors are not finite
    "too_few_pixels": 16,  # fewer usable pixels than free parameters (+ continuum); values are NaN
    # set by survey runs (jaxspec.survey) for spectra that were not fitted; the reason is in `error`
    "read_error": 32,  # the file or row could not be read (corrupt, unknown layout)
    "rejected": 64,  # bad input: outside the model's wavelengths, all pixels masked, wrong shape, ...
    "fit_error": 128,  # the fit raised an error
    # warnings: the fit is usable, but read it with care (``ok`` ignores these bits)
    "ambiguous": 256,  # another pair of velocities fits within MODE_DELTA_CHI2 (10) of the best
    # a spectral label of the preferred solution (binary if is_binary, else single) at its bound:
    # the star may lie outside the model's label range (e.g. an M dwarf and a 4200 K model edge)
    "label_at_bound": 512,
    # a radial velocity of the preferred solution at the fit's bound (1.5 x rv_range): a
    # component the data do not support, or a velocity outside the search range
    "rv_at_bound": 1024,
}
#: Bits of :data:`FLAGS` that are warnings, not failures: :attr:`BinaryFit.ok` ignores them.
WARNINGS = FLAGS["ambiguous"] | FLAGS["label_at_bound"] | FLAGS["rv_at_bound"]


def flag_messages(flag: int) -> str:
    """Human-readable text of a flag value ('' when 0)."""
    flag = int(flag)
    return ", ".join(name.replace("_", " ") for name, bit in FLAGS.items() if flag & bit)


_META = ("names", "free", "units", "ref_wave", "flux_ratio_mode", "bic_threshold", "model_info")
_DATA = (
    "params", "errors", "covariance", "chi2", "dof", "n_iter", "converged", "at_bound",
    "single_params", "single_errors", "single_chi2", "delta_chi2", "bic_single", "bic_binary",
    "is_binary", "flag", "local_params", "local_chi2", "modes", "n_modes", "runner_up_delta_chi2",
    "ambiguous", "n_pixels", "continuum_degree",
    "wave", "flux", "ivar", "model", "model_1", "model_2", "continuum",
)


@dataclasses.dataclass(frozen=True)
class BinaryFit:
    """Best-fit binary and single-star solutions with errors, statistics and flags.

    Per-spectrum fields have shape ``(...)`` for one spectrum and ``(N, ...)``
    for a batch of N. Parameter dicts are keyed by name in :attr:`names` order.

    Attributes:
        params, errors: best values and 1-sigma errors of every parameter
            (errors from the Gauss-Newton covariance; 0 for fixed parameters;
            not meaningful for parameters flagged in ``at_bound``).
        covariance: (..., n_free, n_free) covariance of the free parameters, in
            :attr:`free` order (physical units).
        chi2, dof: chi-square of the binary fit and its degrees of freedom
            (usable pixels minus free parameters minus continuum coefficients).
        n_iter, converged: Levenberg-Marquardt iterations and convergence of
            the best start.
        at_bound: ``{name: bool}`` for free parameters within 1e-3 of a bound
            (relative to the range).
        single_params, single_errors, single_chi2: the single-star fit
            (``flux_ratio`` = 0; the secondary's parameters are then fixed and
            meaningless).
        delta_chi2: ``single_chi2 - chi2``.
        bic_single, bic_binary, is_binary: BIC of both models; ``is_binary``
            is ``bic_single - bic_binary > bic_threshold``.
        flag: bit flags (see :data:`FLAGS`; 0 = all well).
        local_params, local_chi2: the solution and chi-square reached from
            each start ((..., n_starts) arrays per name), sorted by chi2: the
            distinct local optima a sampler may start from.
        modes: the distinct basins of the binary fit, best first: ``{"chi2": (..., M),
            name: (..., M)}`` for every parameter; a basin is a converged local fit
            whose velocity pair differs from every better one by more than 12 km/s (3
            TODCOR steps) in rv_1 or rv_2 and that is not the mirror of a better one
            (the same stars named the other way: velocities swapped within 12 km/s,
            temperatures within 300 K); unused slots hold chi2 = inf and NaN values.
            The basins come from the polished starts and from restarts at the lowest
            other minima of the best fit's rv profile (chi2 over the whole (rv_1, rv_2)
            grid with everything else held).
        n_modes: number of basins found.
        runner_up_delta_chi2: chi2 of the second basin minus the best's (inf if one).
        ambiguous: the runner-up is within 10 in chi2 (``MODE_DELTA_CHI2``): the data
            do not decide between two velocity pairs; also the ``ambiguous`` warning
            bit of ``flag`` (which :attr:`ok` ignores).
        n_pixels: usable (unmasked) pixels.
        continuum_degree: (..., S) Chebyshev degree of the continuum in each wavelength
            segment, as chosen by the BIC (``continuum_degree="auto"``, the default) or given.
        wave, flux, ivar: the data ((P,) wave; flux and ivar as fitted, with
            masked pixels at ivar = 0).
        model, model_1, model_2, continuum: best model with continuum, each
            star's contribution (with continuum) and the continuum, (..., P);
            None in batch results unless ``return_model=True``.
        names, free, units: parameter names (all, free) and units.
        ref_wave: wavelength [A] at which ``flux_ratio`` is defined.
        flux_ratio_mode, bic_threshold: settings of the fit.
        model_info: the spectral model and the pixels it covered, when ``model=None`` chose it
            (e.g. ``"line-list generator (4 segments, 3 km/s pixels) 4700-7895 A: 16001 of 16001
            usable pixels"``); "" when a model was given.
    """

    params: dict
    errors: dict
    covariance: np.ndarray
    chi2: np.ndarray
    dof: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    at_bound: dict
    single_params: dict
    single_errors: dict
    single_chi2: np.ndarray
    delta_chi2: np.ndarray
    bic_single: np.ndarray
    bic_binary: np.ndarray
    is_binary: np.ndarray
    flag: np.ndarray
    local_params: dict
    local_chi2: np.ndarray
    modes: dict
    n_modes: np.ndarray
    runner_up_delta_chi2: np.ndarray
    ambiguous: np.ndarray
    n_pixels: np.ndarray
    wave: np.ndarray | None
    flux: np.ndarray | None
    ivar: np.ndarray | None
    model: np.ndarray | None
    model_1: np.ndarray | None
    model_2: np.ndarray | None
    continuum: np.ndarray | None
    names: tuple = ()
    free: tuple = ()
    units: tuple = ()
    ref_wave: float = 0.0
    flux_ratio_mode: str = "constant"
    bic_threshold: float = 10.0
    model_info: str = ""
    continuum_degree: np.ndarray | None = None

    def __repr__(self) -> str:
        if self.batched:
            return (f"BinaryFit(batch of {len(self)}: {int(np.sum(self.is_binary))} binaries, "
                    f"{int(np.sum(~self.ok))} flagged)")
        p = ", ".join(f"{k}={float(self.params[k]):.4g}" for k in self.names)
        return (f"BinaryFit({p}; chi2={float(self.chi2):.1f}, dof={int(self.dof)}, "
                f"is_binary={bool(self.is_binary)}, flag={int(self.flag)})")

    # ---------------------------------------------------------------- batch access
    @property
    def batched(self) -> bool:
        """True for a batch result (fields have a leading spectrum axis)."""
        return np.ndim(self.chi2) == 1

    def __len__(self) -> int:
        if not self.batched:
            raise TypeError("a single-spectrum BinaryFit has no length")
        return int(np.shape(self.chi2)[0])

    def __getitem__(self, i) -> BinaryFit:
        """The fit of spectrum ``i`` of a batch (an int), or a sub-batch (a slice or index array)."""
        if not self.batched:
            raise TypeError("index a batch result; this BinaryFit is for one spectrum")
        out = {}
        for f in _DATA:
            v = getattr(self, f)
            out[f] = v if f == "wave" else jax.tree_util.tree_map(lambda x: np.asarray(x)[i], v)
        return dataclasses.replace(self, **out)

    @property
    def ok(self):
        """True where no flag is set (warnings such as ``ambiguous`` aside)."""
        return (np.asarray(self.flag) & ~WARNINGS) == 0

    @property
    def flag_message(self):
        """The flags in words ('' when none); a list for a batch."""
        if self.batched:
            return [flag_messages(f) for f in np.asarray(self.flag)]
        return flag_messages(self.flag)

    # ---------------------------------------------------------------- output
    def to_dict(self) -> dict:
        """Columns: every parameter and ``<name>_err``, the single-star parameters
        (``single_<name>``, ``single_<name>_err``), statistics and flags.

        Values are Python scalars for one spectrum and (N,) numpy arrays for a
        batch (ready for ``astropy.table.Table(fit.to_dict())``).
        """
        conv = (lambda x: np.asarray(x)) if self.batched else (lambda x: np.asarray(x).item())
        out = {}
        for n in self.names:
            out[n] = conv(self.params[n])
            out[f"{n}_err"] = conv(self.errors[n])
        for n in self.names:
            if not n.endswith("_2") and n != "flux_ratio":
                out[f"single_{n}"] = conv(self.single_params[n])
                out[f"single_{n}_err"] = conv(self.single_errors[n])
        for k in ("chi2", "dof", "n_iter", "converged", "single_chi2", "delta_chi2", "bic_single",
                  "bic_binary", "is_binary", "n_modes", "runner_up_delta_chi2", "ambiguous", "flag",
                  "n_pixels"):
            out[k] = conv(getattr(self, k))
        out["continuum_degree"] = _degree_text(self.continuum_degree, self.batched, len(self) if self.batched else 1)
        out["flag_message"] = self.flag_message
        return out

    def summary(self) -> str:
        """A table of the fit (one spectrum) or of the batch (medians and counts)."""
        if self.batched:
            n = len(self)
            lines = [f"BinaryFit batch of {n} spectra: {int(np.sum(self.is_binary))} binaries "
                     f"(BIC threshold {self.bic_threshold:g}), {int(np.sum(~self.ok))} flagged",
                     f"{'parameter':12s} {'median':>12s} {'median err':>12s}"]
            for k in self.names:
                lines.append(f"{k:12s} {np.nanmedian(self.params[k]):12.4f} "
                             f"{np.nanmedian(self.errors[k]):12.4f}")
            return "\n".join(lines)
        unit = dict(zip(self.names, self.units, strict=True))
        lines = [f"{'parameter':12s} {'value':>12s} {'error':>10s}  unit"]
        for k in self.names:
            v = float(self.params[k])
            tail = f"{float(self.errors[k]):10.4f}" if k in self.free else "   (fixed)"
            mark = "  (at bound)" if self.at_bound.get(k, False) else ""
            lines.append(f"{k:12s} {v:12.4f} {tail}  {unit[k]}{mark}")
        lines.append(f"flux_ratio is defined at {self.ref_wave:.1f} A ({self.flux_ratio_mode} mode)")
        lines.append(f"chi2 {float(self.chi2):.1f} / dof {int(self.dof)}; single-star chi2 "
                     f"{float(self.single_chi2):.1f}; delta_chi2 {float(self.delta_chi2):.1f}; "
                     f"delta BIC {float(self.bic_single - self.bic_binary):.1f}; "
                     f"is_binary {bool(self.is_binary)}")
        n_modes = int(self.n_modes)
        if n_modes > 1:
            rv1, rv2, c2 = (np.asarray(self.modes[k]) for k in ("rv_1", "rv_2", "chi2"))
            others = "; ".join(f"rv {rv1[m]:.1f} / {rv2[m]:.1f} km/s at +{c2[m] - c2[0]:.1f}"
                               for m in range(1, min(n_modes, 4)))
            lines.append(f"{n_modes} basins (velocity pairs): {others}"
                         + ("  AMBIGUOUS" if bool(self.ambiguous) else ""))
        if self.continuum_degree is not None:
            lines.append(f"continuum degree per segment: {_degree_text(self.continuum_degree, False, 1)}")
        if self.model_info:
            lines.append(f"model: {self.model_info}")
        if int(self.flag):
            lines.append(f"FLAG: {self.flag_message}")
        return "\n".join(lines)

    def plot(self, path=None):
        """Data, model, both components and residuals (matplotlib, imported lazily).

        Args:
            path: file to write (the figure is closed), or None to return it open.
        """
        if self.batched:
            raise TypeError("plot one spectrum: fit[i].plot()")
        if self.model is None:
            raise ValueError("this fit has no model spectra; use return_model=True")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(3, 1))
        good = self.ivar > 0
        ax[0].plot(self.wave[good], self.flux[good], "k", lw=0.5, label="data")
        ax[0].plot(self.wave, self.model, "C3", lw=0.7, label="binary model")
        ax[0].plot(self.wave, self.model_1 + 0.5 * self.continuum, "C0", lw=0.5,
                   label="star 1 contribution (offset)")
        ax[0].plot(self.wave, self.model_2 + 0.2 * self.continuum, "C2", lw=0.5,
                   label="star 2 contribution (offset)")
        p = self.params
        ax[0].set_title(f"rv {float(p['rv_1']):.1f} / {float(p['rv_2']):.1f} km/s, flux ratio "
                        f"{float(p['flux_ratio']):.2f}; delta chi2 {float(self.delta_chi2):.0f}", fontsize=9)
        ax[0].legend(fontsize=8, loc="lower left")
        ax[0].set_ylabel("flux")
        ax[1].plot(self.wave[good], (self.flux - self.model)[good], "k", lw=0.4)
        ax[1].set_ylabel("data - model")
        ax[1].set_xlabel("vacuum wavelength [A]")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


def _degree_text(degree, batched: bool, n: int):
    """The continuum degrees as text, segments separated by commas ('2' or '3,2,5,2')."""
    if degree is None:
        return np.full(n, "", dtype=object) if batched else ""
    deg = np.atleast_2d(np.asarray(degree)) if batched else np.asarray(degree)[None]
    txt = [",".join(str(int(g)) for g in np.atleast_1d(row)) for row in deg]
    return np.asarray(txt, dtype=object) if batched else txt[0]


jax.tree_util.register_dataclass(BinaryFit, data_fields=list(_DATA), meta_fields=list(_META))
