"""What joins the sites below the bridges: VXLAN devices, the encrypted underlay (WireGuard),
and the MTU they leave."""
