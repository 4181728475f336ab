"""
Train an emulator
=================

Sample labels, synthesize the training spectra with the line-list generator,
train a Flax NNX MLP with optax and check it on held-out labels. Tiny sizes
keep the build fast (a real emulator uses thousands of spectra and tens of
thousands of steps: ``scripts/train_default_emulator.py``).
"""

import matplotlib.pyplot as plt
import numpy as np

import jaxspec
from jaxspec.emulator import make_training_set, sample_labels, train_emulator

gen = jaxspec.LineListGenerator(wave_min=5160.0, wave_max=5190.0)      # the Mg b region
box = [[5000.0, 6500.0], [4.0, 5.0], [-0.5, 0.3]]
labels = sample_labels(box, 512, method="sobol")
flux, wave = make_training_set(gen, labels, bin_pixels=3)
em, report = train_emulator(labels, flux, wave, gen.label_names, label_bounds=box, steps=1500, hidden=(64, 64))
print(f"validation rms {report.val_rms:.2e}")

test = sample_labels(box, 32, method="uniform", seed=7)
truth, _ = make_training_set(gen, test, bin_pixels=3)
pred = np.asarray(em.flux_batch(np.asarray(test, dtype=np.float32)))
print(f"held-out rms {np.sqrt(np.mean((pred - truth) ** 2)):.2e}")

# %%
fig, ax = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
ax[0].plot(wave, truth[0], label="generator")
ax[0].plot(wave, pred[0], "--", label="emulator")
ax[0].legend()
ax[1].plot(wave, pred[0] - truth[0])
ax[1].set_xlabel("wavelength [A, vacuum]")
ax[1].set_ylabel("emulator - generator")
plt.show()
