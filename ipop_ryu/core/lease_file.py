"""dnsmasq's lease file (--dhcp-leasefile), read when the controller starts: the leases the
site's server granted before, so port security lets their hosts speak before they renew.

One lease a line: EXPIRY MAC IP HOSTNAME CLIENT-ID, EXPIRY in seconds since the epoch (0:
never), HOSTNAME `*` when the client gave none; DHCPv6 lines (a `duid` line, then IPv6
leases) are not ours. A line that does not read so is skipped and counted.
"""
import ipaddress
import math
from typing import List, NamedTuple, Optional, Tuple

from .config import _mac


class FileLease(NamedTuple):
    ip: str
    mac: str
    hostname: Optional[str]
    seconds_left: float           # math.inf: never expires


def parse(text: str, wall_now: float) -> Tuple[List[FileLease], int]:
    """(the IPv4 leases still running, how many lines could not be read)."""
    leases, bad = [], 0
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] == "duid":
            continue
        try:
            expiry, mac, ip = int(fields[0]), _mac(fields[1]), ipaddress.ip_address(fields[2])
        except (ValueError, IndexError):
            bad += 1
            continue
        if ip.version != 4:
            continue
        left = math.inf if expiry == 0 else expiry - wall_now
        if left > 0:
            name = fields[3] if len(fields) > 3 and fields[3] != "*" else None
            leases.append(FileLease(str(ip), mac, name, left))
    return leases, bad
