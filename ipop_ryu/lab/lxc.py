"""Real LXC containers on a lab site, configured as LXC's users configure them: the busybox
template's config with `lxc.net.0.link = br0`, nothing else about the network; the container's
own init runs udhcpc at boot.

lxc-start runs inside the site's namespace (`ip netns exec`, with the site's OVS_* variables):
LXC then creates the veth there, finds br0 is no Linux bridge (no bridge/bridge_id in sysfs),
takes it for Open vSwitch and adds the host end with `ovs-vsctl add-port`, as on a real host,
and removes the port again when the container stops. Its command socket is an abstract Unix
socket, which belongs to the network namespace: lxc-info/-attach/-stop run there too.

The rootfs is made once per LxcBase (lxc-create -t busybox) and copied per container (a few
MB of links to the host's busybox; lxc-copy needs rsync)."""
import os
import re
import shutil
import subprocess
import tempfile

from . import netns


class LxcError(RuntimeError):
    pass


def available():
    """None, or why real containers cannot run here."""
    missing = [t for t in ("lxc-create", "lxc-start", "lxc-attach") if shutil.which(t) is None]
    if missing or not os.path.exists("/usr/share/lxc/templates/lxc-busybox"):
        return "LXC is not installed: apt install lxc busybox-static (make apt)"
    if shutil.which("busybox") is None:
        return "busybox is not installed: apt install busybox-static"
    return None


class LxcBase:
    """A private lxcpath holding one busybox template container to copy from."""

    def __init__(self, root=None):
        self.path = tempfile.mkdtemp(prefix="ipop-ryu-lxc-", dir=root)
        self.name = "base"
        self._count = 0
        done = subprocess.run(["lxc-create", "-P", self.path, "-t", "busybox", "-n", self.name],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise LxcError(f"lxc-create -t busybox: {(done.stderr or done.stdout).strip()}")
        with open(os.path.join(self.path, self.name, "config")) as f:
            self.config = f.read()
        self._dhcp_script_ipv4_only()

    def _dhcp_script_ipv4_only(self):
        """The template's udhcpc script flushes every address of eth0 at each deconfig, the
        IPv6 link-local included (udhcpc deconfigures at start): the container then sends no
        router solicitation and gets SLAAC only from an unsolicited RA, if one comes. udhcpc
        manages IPv4 alone, as distributions' DHCP clients do: flush that."""
        path = os.path.join(self.path, self.name, "rootfs", "etc", "udhcpc", "default.script")
        with open(path) as f:
            script = f.read()
        with open(path, "w") as f:
            f.write(script.replace("ip addr flush dev", "ip -4 addr flush dev"))

    def config_for(self, name, link, hwaddr=None, static=None):
        """The template's config for a copy: its own rootfs and name, linked to `link`; the
        AppArmor profile unconfined (the profile LXC generates needs AppArmor in the kernel).
        hwaddr: lxc.net.0.hwaddr (the same MAC each start, anywhere); static: (ADDRESS/PREFIX,
        gateway) as lxc.net.0.ipv4.address and .gateway."""
        text = self.config.replace(os.path.join(self.path, self.name, "rootfs"),
                                   os.path.join(self.path, name, "rootfs"))
        text = re.sub(r'(?m)^lxc\.uts\.name = .*$', f'lxc.uts.name = "{name}"', text)
        text = re.sub(r"(?m)^lxc\.net\.0\.link = .*$", f"lxc.net.0.link = {link}", text)
        text = re.sub(r"(?m)^lxc\.apparmor\..*$\n?", "", text)
        text += "lxc.apparmor.profile = unconfined\n"
        if hwaddr:
            text += f"lxc.net.0.hwaddr = {hwaddr}\n"
        if static:
            text += f"lxc.net.0.ipv4.address = {static[0]}\nlxc.net.0.ipv4.gateway = {static[1]}\n"
        return text

    def new_name(self, prefix):
        self._count += 1
        return f"{prefix}{self._count}"

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Container:
    """hwaddr: its MAC (lxc.net.0.hwaddr), else one LXC picks at each start. static:
    (ADDRESS/PREFIX, gateway) set by LXC, and the init's udhcpc taken out of rcS (as a user
    of static addresses does: udhcpc's deconfig would flush the address). send_hostname: its
    udhcpc sends its name (option 12), as Debian's and Ubuntu's DHCP clients do by default and
    a busybox user asks with `udhcpc -x hostname:NAME` (the template's bare udhcpc sends none,
    so lxc-net knows no name for it either)."""

    def __init__(self, base, lab, site, name, hwaddr=None, static=None, send_hostname=False):
        self.base, self.lab, self.site, self.name = base, lab, site, name
        self.dir = os.path.join(base.path, name)
        os.makedirs(self.dir)
        rootfs = os.path.join(self.dir, "rootfs")
        shutil.copytree(os.path.join(base.path, base.name, "rootfs"), rootfs, symlinks=True)
        if static or send_hostname:
            rcs = os.path.join(rootfs, "etc", "init.d", "rcS")
            with open(rcs) as f:
                script = f.read()
            script = re.sub(r"(?m)^/bin/udhcpc.*\n", "", script) if static else \
                re.sub(r"(?m)^/bin/udhcpc$", f"/bin/udhcpc -x hostname:{name}", script)
            with open(rcs, "w") as f:
                f.write(script)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(base.config_for(name, site.bridge, hwaddr, static))
        self.started, self._pid = False, None

    def _lxc(self, tool, *args, check=True, timeout=30):
        return self.lab.exec(self.site.ns, [tool, "-P", self.base.path, "-n", self.name, *args],
                             check=check, timeout=timeout)

    def start(self):
        self._pid = None
        done = self._lxc("lxc-start", "-o", os.path.join(self.dir, "lxc.log"), check=False)
        if done.returncode != 0:
            raise LxcError(f"lxc-start {self.name}: {(done.stderr or done.stdout).strip()}")
        self.started = True
        # the userspace datapath forwards partial checksums as they are: the container
        # computes its own (as the lab's namespace hosts do)
        subprocess.run(netns.exec_argv(self.ns, ["ethtool", "-K", "eth0", "tx", "off"]),
                       capture_output=True, check=True)
        return self

    @property
    def ns(self):
        """Its network namespace, as the lab's exec, capture and ping_log take it: the host's
        own tools (iputils ping -D, tcpdump, arping) run in it."""
        return f"{netns.PID_NS}{self.pid}"

    @property
    def pid(self):
        """Its init's pid (asked once per start)."""
        if self._pid is None:
            self._pid = int(self._lxc("lxc-info", "-pH").stdout.strip())
        return self._pid

    @property
    def port(self):
        """The host end of its veth, a port of the site's bridge."""
        return self._lxc("lxc-info", "-H", "-c", "lxc.net.0.veth.pair").stdout.split("=")[-1] \
            .strip() or self._veth_by_ifindex()

    def _veth_by_ifindex(self):
        peer = self.exec(["cat", "/sys/class/net/eth0/iflink"]).stdout.strip()
        for line in self.site.exec(["ip", "-o", "link"]).stdout.splitlines():
            if line.startswith(f"{peer}: "):
                return line.split(":")[1].strip().split("@")[0]
        raise LxcError(f"no host end of {self.name}'s veth in site {self.site.name}")

    def exec(self, argv, check=True, timeout=30):
        return self._lxc("lxc-attach", "--clear-env", "--", *argv, check=check,
                         timeout=timeout)

    def ipv4(self):
        """Its address on eth0 (what udhcpc set), or None."""
        out = self.exec(["ip", "-4", "-o", "address", "show", "eth0"], check=False).stdout
        found = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
        return found.group(1) if found else None

    def wait_ipv4(self, timeout=30):
        return netns.wait_until(self.ipv4, timeout, f"container {self.name} to get a lease",
                                interval=0.05)

    def stop(self, kill=True):
        if self.started:
            self._lxc("lxc-stop", *(["-k"] if kill else []), check=False, timeout=60)
            self.started, self._pid = False, None

    def destroy(self):
        self.stop()
        # stopped: lxc-destroy needs no command socket, any namespace will do
        subprocess.run(["lxc-destroy", "-P", self.base.path, "-n", self.name],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
