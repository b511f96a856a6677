"""Files the controller writes for other programs on the host."""
import os
import tempfile


def write_atomically(path: str, text: str, mode: int = 0o644):
    """path holds text, or what it held before: never a part. The temporary file is a dotfile
    beside it (dnsmasq's --hostsdir, like most directory watchers, skips dotfiles) and is
    renamed over path."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
