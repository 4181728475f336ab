"""The README's main job, the command line and the example scripts, run tiny."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_synthesize_spectra(tmp_path):
    mod = _load(ROOT / "examples" / "synthesize_spectra.py")
    flux = mod.main(["--wave-min", "5170", "--wave-max", "5180", "--n", "3", "--out", str(tmp_path)])
    assert flux.shape[0] == 3 and np.all(np.isfinite(flux))
    # Hotter stars have weaker metal lines: total absorption falls along the sequence.
    absorption = (1 - flux).sum(axis=1)
    assert absorption[0] > absorption[-1]
    assert (tmp_path / "spectra.png").stat().st_size > 1000


def test_cli_demo(tmp_path):
    from jaxspec.cli import main

    assert main(["demo", "--out", str(tmp_path), "--no-sun"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["binary_truth"]["flux_ratio"] == pytest.approx(0.35)
    fit = summary["binary_fit"]
    assert fit["is_binary"] is True
    assert abs(fit["rv_1"] - summary["binary_truth"]["rv_1"]) < 2.0
    assert abs(fit["rv_2"] - summary["binary_truth"]["rv_2"]) < 3.0
    assert (tmp_path / "binary_fit.png").stat().st_size > 1000
    from astropy.table import Table

    t = Table.read(tmp_path / "binary_spectrum.fits")
    assert set(t.colnames) >= {"wave", "flux", "err"}
    assert np.all(np.isfinite(t["flux"]))
    # The simulated spectrum has absorption lines (it is not flat noise around 1).
    assert np.min(t["flux"]) < 0.8
    assert (tmp_path / "binary_spectrum.png").stat().st_size > 1000


def test_cli_info(capsys):
    from jaxspec.cli import main

    assert main(["info"]) == 0
    assert "jaxspec" in capsys.readouterr().out


def test_cli_help_explains_with_example(capsys):
    from jaxspec.cli import main

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "Example: jaxspec demo" in capsys.readouterr().out


def test_cli_train_from_generator_and_grid(tmp_path, capsys):
    from jaxspec.cli import main
    from jaxspec.emulator import Emulator, read_grid, write_grid

    out = tmp_path / "em.h5"
    args = ["train", "--wave-min", "5170", "--wave-max", "5176", "--n-train", "64", "--box",
            "5000", "6000", "4", "5", "-0.5", "0", "--hidden", "16", "--steps", "200", "--out", str(out)]
    assert main(args) == 0
    em = Emulator.load(out)
    assert em.label_names == ("teff", "logg", "feh")
    np.testing.assert_allclose(em.label_bounds, [[5000, 6000], [4, 5], [-0.5, 0]])
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["val_rms"] > 0
    grid = tmp_path / "grid.h5"
    rng = np.random.default_rng(0)
    lab = rng.uniform(size=(32, 2))
    write_grid(grid, lab, 1 - 0.3 * lab[:, :1] * np.ones((1, 20)), np.linspace(5000, 5001, 20), ("a", "b"))
    assert read_grid(grid)[3] == ("a", "b")
    assert main(["train", "--grid", str(grid), "--hidden", "8", "--steps", "100", "--out", str(out)]) == 0
    assert Emulator.load(out).label_names == ("a", "b")
