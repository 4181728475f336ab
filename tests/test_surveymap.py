"""The survey map: a stack embedded and written as one HTML page, checked in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("openTSNE")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from jaxspec.amortized import simulate_training_set
    from jaxspec.io.stack import write_stack

    d = simulate_training_set(80, np.random.default_rng(4))
    path = tmp_path_factory.mktemp("map") / "stack.h5"
    write_stack(path, d["flux"], d["wave"], err=d["err"], ids=[f"star-{i:03d}" for i in range(80)])
    return path, d


def _data(html: str) -> dict:
    return json.loads(re.search(r"const D = (\{.*?\});\n", html, flags=re.S).group(1))


def test_map_page_holds_every_spectrum(stack, tmp_path):
    from jaxspec.surveymap import write_map

    path, d = stack
    info = write_map(path, tmp_path / "map.html", progress=False)
    html = (tmp_path / "map.html").read_text()
    assert "<script src" not in html  # self-contained
    data = _data(html)
    assert info["n"] == 80 and len(data["ids"]) == 80 and data["ids"][5] == "star-005"
    assert len(data["x"]) == 80 and np.all(np.isfinite(data["x"]))
    assert data["color"] == "p_binary" and set(data["columns"]) >= {"p_binary", "teff_1", "rv_1"}
    import base64

    spec = np.frombuffer(base64.b64decode(data["spec"]), np.uint8).reshape(80, data["npix"])
    assert spec.std() > 0
    with pytest.raises(ValueError, match="unknown color column"):
        write_map(path, tmp_path / "x.html", color="nope", progress=False)


def test_map_with_a_results_table(stack, tmp_path):
    from astropy.table import Table

    from jaxspec.surveymap import write_map

    path, d = stack
    t = Table({"id": [f"star-{i:03d}" for i in range(80)], "teff_1": d["params"]["teff_1"],
               "is_binary": d["binary"].astype(int), "rv_1": d["params"]["rv_1"]})
    t.write(tmp_path / "results.ecsv")
    write_map(path, tmp_path / "map.html", results=tmp_path / "results.ecsv", progress=False)
    data = _data((tmp_path / "map.html").read_text())
    assert data["color"] == "is_binary" and data["model_label"] == "binary fit"
    assert data["columns"]["is_binary"] == [float(b) for b in d["binary"].astype(int)]
    Table({"name": ["x"]}).write(tmp_path / "bad.ecsv")
    with pytest.raises(ValueError, match="no 'id' column"):
        write_map(path, tmp_path / "m.html", results=tmp_path / "bad.ecsv", progress=False)


@pytest.mark.heavy
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")
def test_map_in_a_headless_browser(stack, tmp_path):
    """The page loads in chromium, a click on a point shows that spectrum, and hovering shows its id."""
    playwright = pytest.importorskip("playwright.sync_api")
    from jaxspec.surveymap import write_map

    path, _ = stack
    write_map(path, tmp_path / "map.html", progress=False)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 800, "height": 950})
        page.goto((tmp_path / "map.html").as_uri())
        page.wait_for_function("window.mapReady === true", timeout=30000)
        assert page.evaluate("window.mapSelected") is None
        for i in (3, 41):
            pt = page.evaluate(f"window.mapPointScreen({i})")
            page.mouse.move(pt["x"], pt["y"])
            assert f"star-{i:03d}" in page.text_content("#tip")
            page.mouse.click(pt["x"], pt["y"])
            # a click picks the nearest point: the one under the cursor unless two overlap
            got = page.evaluate("window.mapSelected")
            q = page.evaluate(f"window.mapPointScreen({int(got.split('-')[1])})")
            assert got == f"star-{i:03d}" or (abs(q["x"] - pt["x"]) < 3 and abs(q["y"] - pt["y"]) < 3)
            assert page.text_content("#selected") == got
        browser.close()
