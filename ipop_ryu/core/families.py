"""The registry of neighbour-resolution families a site runs: IPv4 (ARP) and IPv6 (ND).

family.py holds what they share and ARP; family_nd.py holds ND; this module knows both."""
from .family import ArpFamily, Family
from .family_nd import NdFamily


def families():
    """A fresh set (each holds its responders): ARP first."""
    return (ArpFamily(), NdFamily())


def family_of(families_, ip: str) -> Family:
    return families_[0] if ArpFamily.owns(ip) else families_[1]
