"""The README's code blocks run as a new user would run them.

The quick-start block (three commands: install, fit a real survey file,
print the table) runs with its install line skipped (the package is
installed in this environment: ``.ci/run`` installs it with the README's own
command) and ``../shared/data`` pointed at the reference data; the Python
block that fits one real file runs with its file name pointed at the real
file. The posterior block runs (heavy) on a simulated spectrum given as
``flux, wave, err``. The survey block needs a folder of files on one grid
that this repository cannot ship; ``tests/test_survey.py`` covers it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests._shared import REPO, SHARED_DATA, requires_shared

README = (REPO / "README.md").read_text()
MRS = "med-58408-TD230151N343645T01_sp01-015.fits"


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 200, "the README is the front page: about 200 lines at most"
    for link in re.findall(r"\]\(([^)#]+)\)", README):
        if not link.startswith("http"):
            assert (REPO / link).exists(), f"README links to a missing file: {link}"


def _quickstart():
    (block,) = [b for b in _blocks("bash") if "survey-files" in b]
    lines = [ln for ln in block.strip().splitlines() if ln.strip()]
    assert len(lines) == 3, f"the quick start is three commands, got {len(lines)}"
    assert "pip install" in lines[0]
    return lines


@requires_shared
def test_readme_quickstart_fits_a_real_survey_file(tmp_path):
    _, fit_cmd, show_cmd = _quickstart()
    shared = str(SHARED_DATA)
    fit_cmd = fit_cmd.replace("../shared/data", shared)
    assert fit_cmd.startswith("jaxspec fit ")
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for cmd in (fit_cmd, show_cmd):
        r = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{cmd!r} failed:\n{r.stdout}\n{r.stderr}"
    from astropy.table import Table

    t = Table.read(tmp_path / "fit.ecsv")
    from jaxspec.fit.result import WARNINGS

    # no failure bit; warnings (this star's secondary ends at the generator's 3800 K edge: the
    # README's real-files table) are named in the flag_message column
    assert len(t) == 1 and int(t["flag"][0]) & ~WARNINGS == 0, t
    from jaxspec.io.results import read_results

    msg = str(read_results(tmp_path / "fit.ecsv")["flag_message"][0]).strip()
    assert (int(t["flag"][0]) == 0) == (not msg)
    assert np.isfinite(t["teff_1"][0]) and np.isfinite(t["rv_1"][0])
    assert "is_binary" in r.stdout and str(t["id"][0]) in r.stdout


@requires_shared
def test_readme_python_fit_of_a_real_file():
    (block,) = [b for b in _blocks("python") if "read_spectrum" in b]
    path = SHARED_DATA / "survey-files" / "lamost" / MRS
    ns = {}
    exec(compile(block.replace(f'"{MRS}"', repr(str(path))), "README.md", "exec"), ns)
    fit = ns["fit"]
    assert fit.ok and np.isfinite(float(fit.chi2))
    assert 4000.0 < float(fit.params["teff_1"]) < 7500.0


@pytest.mark.heavy
def test_readme_posterior_block(tmp_path, monkeypatch):
    import jaxspec
    from jaxspec.models import BinaryModel
    from jaxspec.simulate import simulate

    (block,) = [b for b in _blocks("python") if "sample_binary" in b]
    truth = {"teff_1": 5900.0, "logg_1": 4.3, "teff_2": 5000.0, "logg_2": 4.6, "feh": -0.3, "rv_1": -22.0,
             "rv_2": 41.0, "vsini_1": 8.0, "vsini_2": 4.0, "flux_ratio": 0.45}
    wave = np.arange(5160.0, 5200.0, 0.2)
    bm = BinaryModel(jaxspec.default_model(), wave, resolution=7500.0)
    flux, err, _ = simulate(bm, {k: np.array([v]) for k, v in truth.items()}, np.random.default_rng(3), snr=50.0)
    monkeypatch.chdir(tmp_path)
    ns = {"jaxspec": jaxspec, "flux": flux[0], "wave": wave, "err": err[0]}
    exec(compile(block, "README.md", "exec"), ns)
    for f in ("corner.png", "fit.png", "post.h5"):
        assert (tmp_path / f).stat().st_size > 0
