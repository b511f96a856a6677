"""A site as a service, without OVS: `ipop-ryu init`'s files, doctor's reading of them, and
the systemd unit."""
import configparser
import os
import stat

import pytest

from ipop_ryu.cli import main
from ipop_ryu.host.site import Site

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
A = ["init", "--node-id", "A", "--peer", "B@192.0.2.2:30000", "--icc-address", "192.0.2.1"]


def init(tmp_path, *args):
    return main([*args, "--dir", str(tmp_path / "etc")])


def one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert err.startswith("ipop-ryu: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


def test_init_writes_a_site_the_controller_accepts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OVS_RUNDIR", "/run/ovs-test")
    assert init(tmp_path, *A) == 0
    conf, key = tmp_path / "etc" / "A.conf", tmp_path / "etc" / "icc.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes().strip()) == 64
    site = Site(str(conf))      # as doctor reads it; parse() is the controller's own check
    assert site.options.node_id == "A" and [p.name for p in site.options.peers] == ["B"]
    assert site.options.icc_key == key.read_bytes().strip()
    # by default the controller dials the listener `ipop-ryu bridge setup br0` makes
    assert str(site.options.switch_address) == "unix:/run/ovs-test/br0.ipop"
    assert (site.target, site.rest, site.service) == \
        ("punix:/run/ovs-test/br0.ipop", "http://127.0.0.1:8080", "ipop-ryu@A")
    out = capsys.readouterr().out
    assert f"wrote {conf}\n" in out and "ipop-ryu@A" in out
    assert "  ipop-ryu bridge setup br0 --peer B=192.0.2.2 --port IFACE...\n" in out


def test_init_never_overwrites_and_writes_nothing_then(tmp_path, capsys):
    assert init(tmp_path, *A) == 0
    before = {p: p.read_bytes() for p in (tmp_path / "etc").iterdir()}
    capsys.readouterr()
    assert init(tmp_path, *A) == 2
    one_line_error(capsys, "A.conf exists: not overwritten")
    (tmp_path / "etc" / "A.conf").unlink()          # the key alone still stops it
    assert init(tmp_path, *A) == 2
    one_line_error(capsys, "icc.key exists: not overwritten")
    assert not (tmp_path / "etc" / "A.conf").exists()
    assert (tmp_path / "etc" / "icc.key").read_bytes() == before[tmp_path / "etc" / "icc.key"]


def test_the_second_site_takes_the_first_sites_key(tmp_path):
    assert init(tmp_path, *A) == 0
    first = tmp_path / "etc" / "icc.key"
    assert main(["init", "--node-id", "B", "--peer", "A@192.0.2.1:30000", "--key", str(first),
                 "--dir", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "icc.key").read_bytes() == first.read_bytes()


@pytest.mark.parametrize("args,words", [
    (["--node-id", "A!"], "bad --node-id 'A!': expected 1-64 letters"),
    (["--node-id", "A", "--peer", "B"], "bad --peer 'B': no '=' after the name; expected NAME=HOST[:PORT]"),
    (["--node-id", "A", "--peer", "A@192.0.2.1:30000"], "lists this node (A) itself"),
    (["--node-id", "A", "--icc-port", "99999"], "bad --icc-port '99999'"),
    (["--node-id", "A", "--ofp-port", "x"], "bad --ofp-port 'x'"),
    (["--node-id", "A", "--key", "/nonexistent"], "--key '/nonexistent': No such file"),
    (["--node-id", "A", "--switch-address", "br0"], "bad --switch-address 'br0': expected"),
])
def test_bad_init_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, words):
    assert init(tmp_path, "init", *args) == 2
    one_line_error(capsys, words)
    assert not (tmp_path / "etc").exists()


def test_init_refuses_a_short_key(tmp_path, capsys):
    short = tmp_path / "short.key"
    short.write_text("tooshort\n")
    assert init(tmp_path, "init", "--node-id", "A", "--key", str(short)) == 2
    one_line_error(capsys, "at least 16 bytes")


@pytest.mark.parametrize("dial,host,target,ours", [
    ("", "127.0.0.1", "tcp:127.0.0.1:6653", True), ("", "127.0.0.1", "tcp:127.0.0.2:6653", False),
    ("", "127.0.0.1", "tcp:127.0.0.1:6654", False), ("", "", "tcp:192.0.2.1:6653", True),
    ("", "::1", "tcp:[::1]:6653", True), ("", "127.0.0.1", "ptcp:6653", False),
    ("unix:/run/o/br0.ipop", "", "punix:/run/o/br0.ipop", True),
    ("unix:/run/o/br0.ipop", "", "punix:/run/o/br1.ipop", False),
    ("unix:/run/o/br0.ipop", "", "tcp:127.0.0.1:6653", False),
    ("tcp:127.0.0.1:6640", "", "ptcp:6640:127.0.0.1", True),
    ("tcp:127.0.0.1:6640", "", "ptcp:6640", True), ("tcp:127.0.0.1:6640", "", "ptcp:6641", False),
])
def test_doctor_knows_our_controller_target(tmp_path, dial, host, target, ours):
    assert init(tmp_path, "init", "--node-id", "A", "--ofp-listen-host", host or "0.0.0.0",
                "--switch-address", dial) == 0
    assert Site(str(tmp_path / "etc" / "A.conf")).is_our_controller(target) is ours


def test_doctor_names_a_bad_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "A.conf"
    bad.write_text("[ipop]\nnode_id = A\nicc_port = 70000\n")
    assert main(["doctor", "--config-file", str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(f"configuration error: {bad}: [ipop] icc_port")


def test_systemd_unit_runs_the_controller_on_the_sites_file_and_restarts_it():
    unit = configparser.RawConfigParser(strict=False)
    unit.optionxform = str
    unit.read(os.path.join(REPO, "packaging", "ipop-ryu@.service"))
    service = unit["Service"]
    assert service["ExecStart"].split()[1:] == ["controller", "--config-file",
                                                "/etc/ipop/%i.conf"]
    assert service["ExecStart"].split()[0].endswith("/bin/ipop-ryu")
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "2"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert unit["Unit"]["ConditionPathExists"] == "/etc/ipop/%i.conf"



NODE_KEYS = ["init", "--node-keys", "--icc-address", "192.0.2.1", "--allowed-ips",
             "10.0.3.0/26"]


def test_init_node_keys_two_sites_end_with_pair_keys(tmp_path, capsys):
    etc = tmp_path / "etc"
    assert init(tmp_path, *NODE_KEYS, "--node-id", "A") == 0
    key, peers = etc / "A.key", etc / "peers.conf"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and not (etc / "icc.key").exists()
    assert stat.S_IMODE(peers.stat().st_mode) == 0o644
    ipop = configparser.ConfigParser(interpolation=None)
    ipop.read(etc / "A.conf")
    assert ipop["ipop"]["private_key_file"] == str(key) and "icc_key_file" not in ipop["ipop"]
    assert ipop["ipop"]["peers_file"] == str(peers)
    out = capsys.readouterr().out
    assert "wrote " + str(peers) in out and "[A]\nendpoint = 192.0.2.1:30000\n" in out
    site = Site(str(etc / "A.conf"))
    assert site.options.private_key and site.options.own.name == "A"
    assert site.options.own.allows("10.0.3.5") and not site.options.own.allows("10.0.3.99")
    # B, in the same directory (one peers.conf): it is kept, B's section is printed to add
    before = peers.read_text()
    assert main(["init", "--node-keys", "--node-id", "B", "--icc-address", "192.0.2.2",
                 "--dir", str(etc)]) == 0
    assert peers.read_text() == before
    section = capsys.readouterr().out.split("one):\n\n", 1)[1].split("\nnext:")[0]
    assert section.startswith("[B]\nendpoint = 192.0.2.2:30000\npublic_key = ")
    peers.write_text(before + section)
    a, b = Site(str(etc / "A.conf")).options, Site(str(etc / "B.conf")).options
    assert [p.name for p in a.peers] == ["B"] and [p.name for p in b.peers] == ["A"]
    from ipop_ryu.core.membership import make_codec
    assert make_codec(a).keyed_peers() == {"B"} and make_codec(b).keyed_peers() == {"A"}


@pytest.mark.parametrize("extra,words", [
    ([], ("--icc-address must be this node's own address",)),       # the default, 0.0.0.0
    (["--icc-address", "0:0::0"], ("--icc-address must be this node's own address",)),
    (["--icc-address", "192.0.2.1", "--peer", "B@192.0.2.2:30000"], ("drop --peer",)),
    (["--icc-address", "192.0.2.1", "--key", "/etc/hostname"], ("drop --peer and --key",)),
    (["--icc-address", "192.0.2.1", "--allowed-ips", "10.0.3.0/33"], ("bad --allowed-ips",
                                                                       "allowed_ips")),
])
def test_init_node_keys_errors_write_nothing(tmp_path, capsys, extra, words):
    assert main(["init", "--node-keys", "--node-id", "A", *extra,
                 "--dir", str(tmp_path / "etc")]) == 2
    one_line_error(capsys, *words)
    assert not (tmp_path / "etc").exists()


def test_init_allowed_ips_needs_node_keys(tmp_path, capsys):
    assert init(tmp_path, *A, "--allowed-ips", "10.0.3.0/24") == 2
    one_line_error(capsys, "--allowed-ips needs --node-keys")


def test_init_node_keys_an_existing_key_stops_it_and_nothing_is_written(tmp_path, capsys):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "A.key").write_text("an earlier key\n")
    assert init(tmp_path, *NODE_KEYS, "--node-id", "A") == 2
    one_line_error(capsys, "A.key exists: not overwritten", "nothing was written")
    assert sorted(p.name for p in etc.iterdir()) == ["A.key"]
    assert (etc / "A.key").read_text() == "an earlier key\n"


@pytest.mark.parametrize("existing,words", [
    ("[A]\nendpoint = 192.0.2.1:30000\n", ("already has [A]",)),     # an earlier init's
    ("[X]\nendpoint = nope\n", ("peers.conf': [X] endpoint", "fix it first")),
    ("[X]\nendpoint = 192.0.2.9:30000\n", ("X has no public_key", "fix it first")),
])
def test_init_node_keys_checks_an_existing_peers_conf_and_keeps_it(tmp_path, capsys, existing,
                                                                   words):
    """The conf written must parse with the peers.conf it points at: else nothing is written."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "peers.conf").write_text(existing)
    assert init(tmp_path, *NODE_KEYS, "--node-id", "A") == 2
    one_line_error(capsys, *words)
    assert sorted(p.name for p in etc.iterdir()) == ["peers.conf"]
    assert (etc / "peers.conf").read_text() == existing


def test_init_node_keys_a_failed_write_takes_back_the_files_before_it(tmp_path, capsys,
                                                                       monkeypatch):
    from ipop_ryu.cli import init as init_command
    write = init_command._write_new

    def full_disk(path, data, mode):
        if path == str(tmp_path / "etc" / "peers.conf"):     # the last of the three
            raise OSError(28, "No space left on device")
        write(path, data, mode)
    monkeypatch.setattr(init_command, "_write_new", full_disk)
    with pytest.raises(OSError):
        init(tmp_path, *NODE_KEYS, "--node-id", "A")
    assert list((tmp_path / "etc").iterdir()) == []


def test_doctor_finds_the_one_site_file_beside_peers_conf(tmp_path, capsys):
    from ipop_ryu.cli.doctor import find_config
    etc = tmp_path / "etc"
    assert init(tmp_path, *NODE_KEYS, "--node-id", "A") == 0
    assert sorted(p.name for p in etc.iterdir()) == ["A.conf", "A.key", "peers.conf"]
    assert find_config(None, str(etc)) == str(etc / "A.conf"), "peers.conf is no site file"
    (etc / "notes.conf").write_text("not even INI\n")
    assert find_config(None, str(etc)) == str(etc / "A.conf")
    assert main(["init", "--node-keys", "--node-id", "B", "--icc-address", "192.0.2.2",
                 "--dir", str(etc)]) == 0
    capsys.readouterr()
    assert main(["doctor", "--dir", str(etc)]) == 2
    one_line_error(capsys, f"2 site files in {etc} (A.conf, B.conf)", "--config-file")
