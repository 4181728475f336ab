"""
Run a survey on real files
==========================

Every spectrum file in a folder, fitted with the bundled default model, one
results table. Here: the real LAMOST MRS (both arms) and SDSS/BOSS files of the
reference data, with no model argument (pixels
outside the model's 4950-5350 A are trimmed). The run is resumable: each
finished chunk is written before the next starts.
"""

import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import jaxspec
from jaxspec.io import read_spectrum

here = Path.cwd()
data = Path(os.environ.get("JAXSPEC_SURVEY_FILES", "")) if os.environ.get("JAXSPEC_SURVEY_FILES") else None
for root in [data] + [p / "shared" / "data" / "survey-files" for p in [here, *here.parents]]:
    if root is not None and (root / "lamost").is_dir():
        data = root
        break
else:
    raise SystemExit("the reference survey files were not found (set JAXSPEC_SURVEY_FILES)")

work = Path(tempfile.mkdtemp())
files = [data / "lamost" / "med-58408-TD230151N343645T01_sp01-015.fits",
         data / "sdss" / "spec-3586-55181-0500.fits"]
(work / "spectra").mkdir()
for f in files:
    shutil.copy(f, work / "spectra" / f.name)

table = jaxspec.run_survey(work / "spectra", work / "results.ecsv", chunk_size=2)
print(table["id", "source", "teff_1", "logg_1", "feh", "rv_1", "rv_2", "is_binary", "flag"])

# %%
# One of them, fitted from Python, with the fit plotted.
# fit_binary itself refuses pixels outside the model (the survey run trims them), so cut to its range.
s = read_spectrum(files[0])
model_wave = jaxspec.default_model().wave
keep = (s.wave > model_wave[0] + 5.0) & (s.wave < model_wave[-1] - 5.0)
fit = jaxspec.fit_binary(s.flux[keep], s.wave[keep], ivar=s.ivar[keep], resolution=s.resolution)
print(fit.summary())
fit.plot()
plt.show()
