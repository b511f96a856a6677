"""`ipop-ryu lab up` options -> the lab's spec (no lab built)."""
import pytest

from ipop_ryu.cli import CommandError, build_parser
from ipop_ryu.cli.lab_build import lab_spec


def spec_of(*argv):
    args = build_parser().parse_args(["lab", "up", *argv])
    return lab_spec(args.sites, args.hosts_per_site, args.controller, args.arp_timeout,
                    args.announce)


def test_announce_is_on_unless_no_announce_is_given():
    assert "announce" not in spec_of().extra_options
    pull = spec_of("--no-announce", "--sites", "3")
    assert pull.extra_options == {"announce": "false"} and len(pull.sites) == 3


def test_bad_values_name_the_option():
    with pytest.raises(CommandError, match="--arp-timeout"):
        spec_of("--arp-timeout", "0")
    with pytest.raises(CommandError, match="--sites"):
        spec_of("--sites", "9")
