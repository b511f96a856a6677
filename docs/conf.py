"""Sphinx configuration: Markdown pages (MyST), HTML and the ipop-ryu(8) man page.

Built by `make docs` (which first regenerates docs/reference/ with docs/generate.py) with
warnings as errors. The build is deterministic: `today` is fixed, so the committed man page
(packaging/ipop-ryu.8) is byte for byte what a fresh build gives (tests/unit/test_docs_build.py).
"""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    """setup.py's version, read as text: the docs build needs no installed package for it."""
    with open(os.path.join(HERE, "..", "setup.py")) as handle:
        return re.search(r'version="([^"]+)"', handle.read()).group(1)


project = "ipop-ryu"
author = "the ipop-ryu developers"
copyright = "the ipop-ryu developers"
release = version = _version()
today = "December 2026"      # fixed: a build must not depend on the day it runs

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
suppress_warnings = []

html_theme = "alabaster"
html_title = f"ipop-ryu {release}"
html_static_path = []
html_last_updated_fmt = None

# the man page: the CLI reference and the options, from the same generated pages
man_pages = [("man/ipop-ryu", "ipop-ryu", "IPOP switch mode on Open vSwitch: controller, "
              "site set-up, lab and status", [author], 8)]
man_show_urls = False
