"""write_atomically: a reader sees the old file or the new one, and no temporary is left."""
import os

import pytest

from ipop_ryu.host.files import write_atomically


def test_replaced_whole_and_readable_by_others(tmp_path):
    path = tmp_path / "hosts" / "overlay"         # the directory is made
    write_atomically(str(path), "10.0.3.70 c70 c70.lxc\n")
    with open(path) as before:                     # an open reader keeps the old file
        write_atomically(str(path), "10.0.3.71 c71 c71.lxc\n")
        assert before.read() == "10.0.3.70 c70 c70.lxc\n"
    assert path.read_text() == "10.0.3.71 c71 c71.lxc\n"
    assert os.listdir(path.parent) == ["overlay"]
    assert path.stat().st_mode & 0o777 == 0o644, "dnsmasq runs as its own user"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "overlay"
    write_atomically(str(path), "old\n")

    def fail(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_atomically(str(path), "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["overlay"]
