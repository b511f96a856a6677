"""The committed reference pages (docs/reference/*.md) are what docs/generate.py makes from
the code now: a change to the options, ICC's schemas, the pipeline, the metrics or the CLI
must come with its regenerated page (`make docs`)."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def generate():
    spec = importlib.util.spec_from_file_location("docs_generate",
                                                  os.path.join(ROOT, "docs", "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["cli.md", "options.md", "icc-messages.md", "tables.md",
                                  "purposes.md", "metrics.md"])
def test_committed_page_is_what_the_code_gives(generate, name):
    with open(os.path.join(generate.OUT, name)) as handle:
        committed = handle.read()
    assert committed == generate.PAGES[name](), \
        f"docs/reference/{name} is out of date: run `make docs` and commit it"


def test_check_mode_names_a_stale_page(generate, tmp_path, monkeypatch, capsys):
    for name, build in generate.PAGES.items():
        (tmp_path / name).write_text(build())
    (tmp_path / "metrics.md").write_text("# an old page\n")
    monkeypatch.setattr(generate, "OUT", str(tmp_path))
    assert generate.main(["--check"]) == 1
    assert "docs/reference/metrics.md" in capsys.readouterr().err
    assert (tmp_path / "metrics.md").read_text() == "# an old page\n"   # --check writes nothing
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0


def test_every_option_flag_message_purpose_and_table_is_on_its_page(generate):
    from ipop_ryu.core import config, icc, pipeline
    pages = {name: build() for name, build in generate.PAGES.items()}
    assert all(f"`{option}`" in pages["options.md"] for option in config.OPTIONS)
    assert all(f"### `{msg}`" in pages["icc-messages.md"] for msg in icc.SCHEMAS)
    assert all(f"| `{purpose}` |" in pages["purposes.md"] for purpose in pipeline.PURPOSES)
    assert all(f"| `{table.name}` |" in pages["tables.md"] for table in pipeline.TABLES)
    for flag in ("`--node-keys`", "`--encrypt`", "`--config-file PATH`", "## `ipop-ryu lab up`",
                 "## `ipop-ryu bridge teardown`", "`--dry-run`"):
        assert flag in pages["cli.md"]
    assert "| `ipop_peer_up` | gauge | `node`, `peer` |" in pages["metrics.md"]
    assert "| `ipop_icc_dropped_total` | counter | `node`, `reason` |" in pages["metrics.md"]
