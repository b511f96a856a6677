"""Results and plots are outputs, not sources: what bench/latest/ holds is exactly what the
docs embed (a full bench run publishes its plots there and embeds them in bench/README.md)."""
import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
LATEST = ROOT / "bench" / "latest"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _docs():
    skip = {".git", "results", "node_modules", "_build"}
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".venv")]
        for name in files:
            if name.endswith(".md"):
                yield pathlib.Path(top) / name


def _embedded():
    """Every image a Markdown file embeds, resolved against the file's folder."""
    found = {}
    for doc in _docs():
        for target in IMAGE.findall(doc.read_text()):
            if "://" not in target:
                found.setdefault((doc.parent / target).resolve(), []).append(doc)
    return found


def test_every_embedded_image_is_there():
    missing = {str(p.relative_to(ROOT)): [str(d.relative_to(ROOT)) for d in docs]
               for p, docs in _embedded().items() if not p.is_file()}
    assert missing == {}


def test_bench_latest_holds_only_what_the_docs_embed():
    embedded = set(_embedded())
    kept = {p.resolve() for p in LATEST.iterdir()}
    assert kept, "bench/latest/ holds the plots bench/README.md embeds"
    assert sorted(str(p.relative_to(ROOT)) for p in kept - embedded) == []
