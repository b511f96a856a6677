"""The real app on good and bad configuration files, as `ipop-ryu controller` runs it and as
the framework's own manager (`ryu-manager`, `osken-manager`) does, where there is one."""
import configparser
import os
import socket
import subprocess
import sys

import pytest

from ipop_ryu.compat import framework
from ipop_ryu.core.config import parse

BIN = os.path.dirname(sys.executable)
RUNNERS = [[os.path.join(BIN, "ipop-ryu"), "controller"]]
if framework.HAS_MANAGER:
    RUNNERS.append([os.path.join(BIN, framework.MANAGER)])
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=RUNNERS, ids=lambda argv: os.path.basename(argv[0]))
def runner(request):
    return request.param


def run_app(runner, conf_path, timeout=60):
    return subprocess.run([*runner, "--config-file", conf_path, "ipop_ryu.apps.switchmode"],
                          capture_output=True, text=True, timeout=timeout)


def write_conf(tmp_path, defaults=(), **ipop):
    key = tmp_path / "icc.key"
    key.write_text("0123456789abcdef0123456789abcdef")
    values = {"node_id": "A", "icc_key_file": str(key), "icc_address": "127.0.0.1", **ipop}
    path = tmp_path / "site.conf"
    path.write_text("[DEFAULT]\nwsapi_port = 0\n" + "".join(f"{k} = {v}\n" for k, v in defaults)
                    + "[ipop]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return str(path)


@pytest.mark.parametrize("option,value", [("icc_port", "abc"), ("peers", "B@nowhere"),
                                          ("arp_timeout", "-1"), ("icc_key_file", "/nope")])
def test_bad_option_stops_the_app_with_one_clear_line(tmp_path, runner, option, value):
    conf = write_conf(tmp_path, **{"icc_port": "30000", option: value})
    run = run_app(runner, conf)
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"{conf}: [ipop] {option}:" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def test_missing_node_id_is_named(tmp_path, runner):
    conf = write_conf(tmp_path, icc_port="30000")
    text = open(conf).read().replace("node_id = A\n", "")
    open(conf, "w").write(text)
    run = run_app(runner, conf)
    assert run.returncode == 2 and "[ipop] node_id: is required" in run.stderr


@pytest.mark.parametrize("name", ["site-a.conf", "site-b.conf"])
def test_shipped_seed_configs_are_valid(tmp_path, name):
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "configs", name))
    raw = dict(parser["ipop"])
    key = tmp_path / "icc.key"
    key.write_text("0123456789abcdef0123456789abcdef")
    raw["icc_key_file"] = str(key)              # the shipped path is the operator's
    options = parse(raw)
    assert options.node_id in ("A", "B") and len(options.peers) == 1
    assert options.is_overlay_port("ipop-B") and options.icc_port == 30000


def _free_port(kind):
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dialing_app(tmp_path, runner, request, env=None):
    """The app run by `runner`, dialing a stand-in bridge's listener: the accepted connection
    (the app is up once it dials) and the path of its log (stdout and stderr)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    request.addfinalizer(listener.close)
    path = str(tmp_path / "br0.ipop")
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(30)
    ofp = [("ofp_listen_host", "127.0.0.1"),
           ("ofp_tcp_listen_port", _free_port(socket.SOCK_STREAM))]
    conf = write_conf(tmp_path, ofp, icc_port=_free_port(socket.SOCK_DGRAM),
                      switch_address=f"unix:{path}")
    log_path = tmp_path / "controller.log"
    log = open(log_path, "wb")
    request.addfinalizer(log.close)
    proc = subprocess.Popen([*runner, "--config-file", conf, "ipop_ryu.apps.switchmode"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)

    def stop():
        proc.terminate()
        proc.wait(10)
    request.addfinalizer(stop)
    conn, _ = listener.accept()
    request.addfinalizer(conn.close)
    conn.settimeout(10)
    return conn, log_path


def test_the_app_dials_the_bridge_and_says_hello(tmp_path, runner, request):
    """switch_address: the controller connects to the bridge's listener (a stand-in here) and
    opens with an OpenFlow 1.3 hello, under every runner (the green sockets it needs are
    eventlet's, patched by each runner first)."""
    conn, log_path = dialing_app(tmp_path, runner, request)
    hello = conn.recv(8)
    assert (hello[0], hello[1]) == (4, 0), (hello, log_path.read_text())


def test_ipop_ryu_controller_starts_clean_and_names_its_framework(tmp_path, request):
    """No alarms an operator cannot act on at the head of the log (eventlet's deprecation
    notice, "RLock(s) were not greened"), and one line naming the framework and hub."""
    # eventlet keeps its RLock report quiet under pytest: the controller must not know
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    conn, log_path = dialing_app(tmp_path, RUNNERS[0], request, env)
    assert conn.recv(8)[:2] == bytes([4, 0])          # up: it dialed and said hello
    log = log_path.read_text()
    lines = log.splitlines()
    assert lines[0].startswith(f"ipop-ryu controller on {framework.DISPLAY_NAME} "
                               f"{framework.VERSION}, eventlet "), log
    assert lines[0].endswith(" hub"), log
    assert sum("ipop-ryu controller on" in line for line in lines) == 1, log
    assert "Eventlet is deprecated" not in log and "were not greened" not in log, log
    assert "Traceback" not in log, log
