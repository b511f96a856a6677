"""The docs build with Sphinx, warnings as errors, and the committed man page
(packaging/ipop-ryu.8, installed by setup.py) is what a fresh build of the same sources gives.
Needs Sphinx and MyST (requirements/docs.txt, in .venv by `make setup`)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="requirements/docs.txt is not installed")
pytest.importorskip("myst_parser", reason="requirements/docs.txt is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")


def sphinx(builder, out, doctrees):
    done = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b",
                           builder, "-d", str(doctrees), DOCS, str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"sphinx -b {builder} -W failed:\n{done.stderr[-4000:]}"


def test_html_builds_without_a_warning(tmp_path):
    sphinx("html", tmp_path / "html", tmp_path / "doctrees")
    assert (tmp_path / "html" / "index.html").exists()
    assert (tmp_path / "html" / "reference" / "options.html").exists()


def test_committed_man_page_is_a_fresh_build(tmp_path):
    sphinx("man", tmp_path / "man", tmp_path / "doctrees")
    with open(tmp_path / "man" / "ipop-ryu.8") as fresh, \
            open(os.path.join(ROOT, "packaging", "ipop-ryu.8")) as committed:
        assert committed.read() == fresh.read(), \
            "packaging/ipop-ryu.8 is not what the docs build gives: run `make docs` and commit it"
