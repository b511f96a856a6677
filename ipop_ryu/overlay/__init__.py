"""What joins the sites below the bridges: the encrypted underlay (WireGuard)."""
