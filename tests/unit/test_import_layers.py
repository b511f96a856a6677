"""The import layers of .importlinter hold: arrows point down, the core imports no framework,
only compat/ imports Ryu or os-ken, and no package's modules import each other in a cycle."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def test_every_import_contract_is_kept():
    proc = subprocess.run([LINT, "--config", os.path.join(ROOT, ".importlinter"),
                           "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout


def test_a_broken_layer_is_caught(tmp_path):
    """The check can fail: a contract the tree breaks (core above cli) is reported broken."""
    config = tmp_path / "layers.ini"
    config.write_text("[importlinter]\nroot_packages =\n    ipop_ryu\n\n"
                      "[importlinter:contract:upside-down]\nname = upside down\n"
                      "type = layers\nlayers =\n    ipop_ryu.core\n    ipop_ryu.cli\n")
    proc = subprocess.run([LINT, "--config", str(config), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "BROKEN" in proc.stdout
