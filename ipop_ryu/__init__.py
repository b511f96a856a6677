"""ipop-ryu: IPOP switch mode as a Ryu OpenFlow 1.3 application driving Open vSwitch."""
