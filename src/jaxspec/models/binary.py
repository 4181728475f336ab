"""The SB2 binary model: two components of any spectral model, observed through one instrument.

For parameters ``theta`` (see :meth:`BinaryModel.spec`), on the spectral
model's rest-frame grid:

    F_i = Doppler(rv_i) * Rotation(vsini_i) * model.flux(labels_i)
    F   = (F_1 + k(lambda) F_2) / (1 + k(lambda))

then the instrument's Gaussian line-spread function at resolving power
``resolution`` and linear resampling onto the observed pixels. ``k`` is the
secondary-to-primary flux ratio:

* ``flux_ratio_mode="constant"``: ``k = flux_ratio``;
* ``flux_ratio_mode="blackbody"``: ``k(lambda) = flux_ratio * [B(lambda, teff_2) /
  B(lambda, teff_1)] / [B(ref, teff_2) / B(ref, teff_1)]``, i.e. a surface
  ratio times the ratio of Planck functions, normalized so that
  ``flux_ratio`` is the ratio at the reference wavelength ``ref_wave``.

``flux_ratio`` is always the ratio at ``ref_wave`` [A, vacuum; default: the
middle of the model grid], and lies in (0, 1]: component 1 is the brighter
star there, which removes the label-switching symmetry. Labels of the
spectral model listed in ``shared`` (default ``("feh",)``) are common to
both stars; the others get suffixes ``_1`` and ``_2``.

The continuum (a multiplicative polynomial) is not part of this model: the
fitters multiply it in (see the fitting layer).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxspec.models.params import Param, ParamSpec
from jaxspec.physics.blackbody import planck
from jaxspec.physics.doppler import doppler_shift
from jaxspec.physics.grid import check_wavelengths, grid_step, make_resampler, resample
from jaxspec.physics.lsf import apply_lsf
from jaxspec.physics.rotation import rotational_broadening

__all__ = ["BinaryModel"]

_UNITS = {"teff": "K", "logg": "dex", "feh": "dex", "vmic": "km/s", "vmacro": "km/s"}
_MODES = ("constant", "blackbody")


class BinaryModel:
    """Two-component spectrum on observed pixels.

    Args:
        model: a spectral model (``label_names``, ``label_bounds``, ``wave``, ``flux``).
        wave: (n_obs,) observed vacuum wavelengths [A], increasing, inside the
            model grid (with room for the Doppler shifts).
        resolution: resolving power lambda / FWHM of the instrument (scalar),
            or None for no LSF.
        flux_ratio_mode: ``"constant"`` or ``"blackbody"``.
        shared: spectral-model labels common to both stars.
        ref_wave: reference wavelength of ``flux_ratio`` [A].
        rv_max: |rv| bound [km/s]; vsini_max: largest vsini [km/s] (sets the
            rotation kernel size).

    Raises:
        ValueError: bad wavelengths (unsorted, non-finite, outside the model
            grid), unknown shared labels, unknown mode.
    """

    def __init__(
        self,
        model,
        wave,
        *,
        resolution=None,
        flux_ratio_mode: str = "constant",
        shared=("feh",),
        ref_wave: float | None = None,
        rv_max: float = 500.0,
        vsini_max: float = 300.0,
    ):
        if flux_ratio_mode not in _MODES:
            raise ValueError(f"flux_ratio_mode must be one of {_MODES}, got {flux_ratio_mode!r}")
        if "teff" not in model.label_names and flux_ratio_mode == "blackbody":
            raise ValueError("flux_ratio_mode='blackbody' needs a spectral model with a 'teff' label")
        unknown = [s for s in shared if s not in model.label_names]
        if unknown:
            raise ValueError(f"shared labels {unknown} are not labels of the model {model.label_names}")
        self.model = model
        self.wave = check_wavelengths(wave, "wave")
        mw = np.asarray(model.wave)
        if self.wave[0] < mw[0] or self.wave[-1] > mw[-1]:
            raise ValueError(
                f"observed wavelengths {self.wave[0]:.2f}-{self.wave[-1]:.2f} A are not inside the "
                f"model grid {mw[0]:.2f}-{mw[-1]:.2f} A"
            )
        self.dlnlam = grid_step(mw)
        self.resampler = make_resampler(mw, self.wave)
        self.resolution = None if resolution is None else float(resolution)
        self.flux_ratio_mode = flux_ratio_mode
        self.shared = tuple(shared)
        self.ref_wave = float(ref_wave) if ref_wave is not None else float(np.sqrt(mw[0] * mw[-1]))
        self.vsini_max = float(vsini_max)
        self.rv_max = float(rv_max)
        self._model_wave = jnp.asarray(mw)
        self.spec = self._make_spec()

    def _make_spec(self) -> ParamSpec:
        params = []
        bounds = dict(zip(self.model.label_names, np.asarray(self.model.label_bounds), strict=True))
        for suffix in ("_1", "_2"):
            for name in self.model.label_names:
                if name not in self.shared:
                    lo, hi = bounds[name]
                    params.append(Param(name + suffix, _UNITS.get(name, ""), float(lo), float(hi)))
        for name in self.shared:
            lo, hi = bounds[name]
            params.append(Param(name, _UNITS.get(name, ""), float(lo), float(hi)))
        params += [
            Param("rv_1", "km/s", -self.rv_max, self.rv_max),
            Param("rv_2", "km/s", -self.rv_max, self.rv_max),
            Param("vsini_1", "km/s", 0.0, self.vsini_max),
            Param("vsini_2", "km/s", 0.0, self.vsini_max),
            Param("flux_ratio", "", 0.0, 1.0),
        ]
        return ParamSpec(tuple(params))

    def labels(self, theta: dict, component: int):
        """Label vector of component 1 or 2 in the spectral model's order."""
        return jnp.stack([
            jnp.asarray(theta[n] if n in self.shared else theta[f"{n}_{component}"])
            for n in self.model.label_names
        ])

    def ratio(self, theta: dict):
        """k(lambda) on the model grid, (n_model,)."""
        q = jnp.asarray(theta["flux_ratio"])
        if self.flux_ratio_mode == "constant":
            return jnp.full(self._model_wave.shape, q)
        t1, t2 = theta["teff_1"], theta["teff_2"]
        shape = planck(self._model_wave, t2) / planck(self._model_wave, t1)
        ref = planck(self.ref_wave, t2) / planck(self.ref_wave, t1)
        return q * shape / ref

    def components(self, theta: dict):
        """Normalized rest-frame components, rotated and shifted, on the model grid: (F_1, F_2)."""
        out = []
        for i in (1, 2):
            f = self.model.flux(self.labels(theta, i))
            f = rotational_broadening(f, theta[f"vsini_{i}"], self.dlnlam, vsini_max=self.vsini_max)
            out.append(doppler_shift(f, theta[f"rv_{i}"], self.dlnlam))
        return tuple(out)

    def _observe(self, f):
        if self.resolution is not None:
            f = apply_lsf(f, self.resolution, self.dlnlam)
        return resample(f, self.resampler)

    def flux(self, theta: dict):
        """Combined normalized flux on the observed pixels, (n_obs,)."""
        f1, f2 = self.components(theta)
        k = self.ratio(theta)
        return self._observe((f1 + k * f2) / (1.0 + k))

    def contributions(self, theta: dict):
        """Each star's contribution on the observed pixels: ``(F_1 / (1 + k), k F_2 / (1 + k))``.

        They add up to :meth:`flux` (the LSF and resampling are linear).
        """
        f1, f2 = self.components(theta)
        k = self.ratio(theta)
        return self._observe(f1 / (1.0 + k)), self._observe(k * f2 / (1.0 + k))
