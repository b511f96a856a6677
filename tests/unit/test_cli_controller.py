"""`ipop-ryu controller`: ryu-manager's command line, checked before any framework starts."""
import pytest

from ipop_ryu.cli import build_parser, main
from ipop_ryu.cli.controller import DEFAULT_APP, app_names, framework_args


def parse(*argv):
    return build_parser().parse_args(["controller", *argv])


def test_the_frameworks_command_line_is_passed_through_and_apps_default_to_ours(tmp_path):
    conf = tmp_path / "site.conf"
    conf.write_text("[ipop]\n")
    args = parse("--config-file", str(conf), "--ofp-listen-host", "127.0.0.1",
                 "--ofp-tcp-listen-port", "6653", "--wsapi-host", "::1", "--wsapi-port", "0")
    assert framework_args(args) == ["--config-file", str(conf), "--ofp-listen-host",
                                    "127.0.0.1", "--wsapi-host", "::1",
                                    "--ofp-tcp-listen-port", "6653", "--wsapi-port", "0"]
    assert app_names(args) == [DEFAULT_APP]
    assert app_names(parse("ipop_ryu.apps.switchmode", "ipop_ryu.apps.rest")) == \
        ["ipop_ryu.apps.switchmode", "ipop_ryu.apps.rest"]


@pytest.mark.parametrize("argv,words", [
    (["--config-file", "/nonexistent.conf"], "--config-file /nonexistent.conf: no such"),
    (["--ofp-tcp-listen-port", "66000"], "bad port '66000': expected a whole number"),
    (["--wsapi-port", "http"], "bad port 'http'"),
    (["no.such.app"], "no app module 'no.such.app'"),
    (["ipop_ryu.apps.nope"], "no app module 'ipop_ryu.apps.nope'"),
])
def test_bad_arguments_are_one_line(capsys, argv, words):
    assert main(["controller", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipop-ryu: ") and err.count("\n") == 1 and words in err, err
