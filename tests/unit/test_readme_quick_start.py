"""The README's quick start is the tested path: each command it tells a user to type is a line
of a block of docs/by-hand.md that tests/integration/test_by_hand.py runs as written, and the
README keeps its two set-up commands."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def quick_start_commands(readme):
    """The commands of the README's quick start: its indented lines, comments and trailing
    `# on A` notes dropped."""
    block = readme.split("<!-- quick-start -->")[1].split("<!-- /quick-start -->")[0]
    commands = []
    for line in block.splitlines():
        if line.startswith("    ") and not line.strip().startswith("#"):
            commands.append(re.sub(r"\s+#.*$", "", line.strip()))
    return commands


def lines_the_test_runs(doc):
    """Lines of the by-hand page's blocks the integration test runs (`# on A|B|each site`)."""
    lines = set()
    for body in re.findall(r"^```sh\n(.*?)^```", doc, re.M | re.S):
        if re.fullmatch(r"# on (A|B|each site)", body.splitlines()[0]):
            lines.update(line.strip() for line in body.splitlines())
    return lines


def test_every_quick_start_command_is_run_by_the_by_hand_test():
    commands = quick_start_commands(read("README.md"))
    assert len(commands) >= 6, commands
    untested = [c for c in commands if c not in lines_the_test_runs(read("docs", "by-hand.md"))]
    assert not untested, f"README quick-start commands no test runs: {untested}"


def test_a_command_the_doc_lacks_is_caught():
    readme = "<!-- quick-start -->\n    ipop-ryu init --node-id A   # on A\n<!-- /quick-start -->"
    assert quick_start_commands(readme) == ["ipop-ryu init --node-id A"]
    assert "ipop-ryu init --node-id A" not in lines_the_test_runs(read("docs", "by-hand.md"))


def test_the_readme_keeps_its_two_commands():
    readme = read("README.md")
    assert len(readme.splitlines()) <= 150
    assert re.findall(r"^    make (\w+)", readme, re.M) == ["demo", "test"]
