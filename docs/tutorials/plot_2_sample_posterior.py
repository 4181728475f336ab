"""
Sample a posterior
==================

NumPyro NUTS on exactly the fitter's likelihood, started from the fit and
its local optima. Short chains keep the build fast; the defaults (500
warmup + 250 draws, continued while r_hat or the ESS fail) are what the
calibration measures.
"""

import matplotlib.pyplot as plt
import numpy as np

import jaxspec
from jaxspec.models import BinaryModel
from jaxspec.simulate import simulate

truth = {"teff_1": 5900.0, "logg_1": 4.3, "teff_2": 5000.0, "logg_2": 4.6, "feh": -0.3,
         "rv_1": -22.0, "rv_2": 41.0, "vsini_1": 8.0, "vsini_2": 4.0, "flux_ratio": 0.45}
model = jaxspec.default_model()
wave = np.arange(5150.0, 5250.0, 0.2)
bm = BinaryModel(model, wave, resolution=7500.0)
flux, err, _ = simulate(bm, {k: np.array([v]) for k, v in truth.items()}, np.random.default_rng(2), snr=50.0)

post = jaxspec.sample_binary(flux[0], wave, err=err[0], resolution=7500.0,
                             priors={"vsini_1": (0.0, 60.0), "vsini_2": (0.0, 60.0)},
                             num_warmup=150, num_samples=150, num_chains=2, max_samples=150, seed=0)
print(post.summary())

# %%
# The corner plot with the truth, and the posterior-median model with its bands.
post.plot_corner(truths=truth, names=("teff_1", "teff_2", "rv_1", "rv_2", "flux_ratio"))
plt.show()
post.plot_fit()
plt.show()
