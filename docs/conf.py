"""Sphinx configuration of the jaxspec documentation.

Build (warnings are errors, tutorials executed):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The benchmark table (``benchmarks.md``) is generated at build time from the
JSON records in ``benchmarks/records/`` by ``benchmarks/report.py``; the
tutorials in ``docs/tutorials/`` are run by sphinx-gallery, which writes
their figures. Neither is committed.
"""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

import jaxspec  # noqa: E402  (after the backend is set)

project = "jaxspec"
author = "the jaxspec developers"
copyright = "2026, the jaxspec developers"
release = jaxspec.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "tutorials/*.py", "tutorials/README.rst", "Thumbs.db", ".DS_Store"]
myst_heading_anchors = 3
# myst.header: pages moved from the README start at level-2 headings in places; ref.python: an attribute
# name shared by a protocol and its implementations (label_names) resolves to several targets.
suppress_warnings = ["myst.header", "ref.python"]

autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # Attributes sections as fields: autodoc documents the attributes themselves
nitpicky = False

html_theme = "furo"
html_title = f"jaxspec {release}"
html_static_path = []

# The tutorials: every docs/tutorials/plot_*.py script is executed; its figures go to the page.
sphinx_gallery_conf = {
    "examples_dirs": "tutorials",
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 1,
}

# The benchmark table from the records, generated on every build (not committed).
subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), "--markdown",
                str(DOCS / "_generated" / "benchmarks_table.md")], check=True,
               env={**os.environ, "PYTHONPATH": str(ROOT)})
