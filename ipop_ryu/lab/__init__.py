"""Namespace lab: sites running private userspace Open vSwitch instances joined by VXLAN.

    from ipop_ryu.lab import Lab, seed_two_sites, ping
    with Lab(seed_two_sites(controller="normal")) as lab:
        assert ping(lab.hosts["h3"], "10.0.3.7").ok
"""
from .lab import WORKDIR_ROOT, Host, Lab, Site, cleanup_all
from .ovs import OvsInstance
from .topology import HostSpec, LabSpec, SiteSpec, host_mac, mesh, seed_two_sites
from .traffic import ArpingResult, Capture, PingResult, arping, flush_arp, ping

__all__ = ["WORKDIR_ROOT", "Host", "Lab", "Site", "cleanup_all", "OvsInstance", "HostSpec",
           "LabSpec", "SiteSpec", "host_mac", "mesh", "seed_two_sites", "ArpingResult",
           "Capture", "PingResult", "arping", "flush_arp", "ping"]
