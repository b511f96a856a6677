"""The simulated switch lives with the simulator; unit tests use the same one."""
from ipop_ryu.sim.switch import FULL, FakeSwitch  # noqa: F401
