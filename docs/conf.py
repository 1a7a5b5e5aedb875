"""Sphinx configuration of minigrad's documentation (an API reference built from the
docstrings, plus the tutorial from README.md).

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html      # the site
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest # run the >>> examples
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)           # the checkout's minigrad (kernels built in place by pip -e)

import minigrad  # noqa: E402

project = "minigrad"
author = "the minigrad authors"
copyright = "minigrad authors"
version = release = minigrad.__version__

extensions = [
    "sphinx.ext.autodoc",       # API pages from the docstrings
    "sphinx.ext.napoleon",      # NumPy-style sections (Parameters, Returns, Examples)
    "sphinx.ext.doctest",       # `sphinx-build -b doctest` runs every >>> example
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",      # a [source] link next to every function
    "myst_parser",              # the tutorial page includes README.md
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "none"           # the signatures and the Parameters sections say it
autoclass_content = "class"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]   # README links to files of the repository

doctest_global_setup = """
import numpy as np
import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
import minigrad.kernels as kernels
"""

html_theme = "alabaster"
html_title = f"minigrad {release}"
html_theme_options = {
    "description": "a small, readable autodiff tensor framework for CNNs",
    "fixed_sidebar": True,
    "page_width": "1180px",         # room for the formulas' code lines
    "body_max_width": "none",
}
