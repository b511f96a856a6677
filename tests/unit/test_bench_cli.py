"""`ipop-ryu bench` across the boundary: the controller declares the arguments and enters the
bench package (bench/ipop_bench) only when the command runs."""
import ast
import pathlib
import sys

import pytest

import ipop_ryu
from ipop_bench import systems as S
from ipop_ryu.cli import bench as cli_bench
from ipop_ryu.cli import main

CONTROLLER = pathlib.Path(ipop_ryu.__file__).parent


def _bench_imports(tree):
    """(line, inside a function) of every import of ipop_bench in a module."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                names = [child.module or ""]
            if any(n == "ipop_bench" or n.startswith("ipop_bench.") for n in names):
                found.append((child.lineno, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def test_the_controller_enters_the_bench_only_from_the_bench_command():
    elsewhere = [str(p.relative_to(CONTROLLER)) for p in CONTROLLER.rglob("*.py")
                 if p != CONTROLLER / "cli" / "bench.py" and "ipop_bench" in p.read_text()]
    assert elsewhere == []
    imports = _bench_imports(ast.parse((CONTROLLER / "cli" / "bench.py").read_text()))
    assert len(imports) == 1 and imports[0][1], f"one lazy import, in run(): {imports}"


def test_the_cli_offers_the_systems_the_bench_runs():
    assert cli_bench.SYSTEMS == S.SYSTEMS


def test_bench_without_matplotlib_says_in_one_line_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib fails
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib is not installed" in err, err
    assert "pip install ./bench" in err, err


@pytest.mark.parametrize("argv, message", [
    (["--systems", "normal", "nox"], "unknown system(s) ['nox']"),
    (["--reps", "0"], "--reps: 1 to 55"),
    (["--sites", "1"], "--sites: at least 2"),
    (["--hosts", "x"], "--sites/--hosts take whole numbers"),
    (["--scale-n", "5"], "--scale-n and --scale-window go with --scale"),
    (["--scale", "--scale-n", "0"], "--scale-n: 1 to 4,194,304 entries"),
    (["--scale", "--scale-window", "0"], "--scale-window: a positive number of seconds"),
])
def test_bad_bench_arguments_give_one_line(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipop-ryu: ") and message in err and err.count("\n") == 1, err
