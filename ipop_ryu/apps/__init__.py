"""Ryu applications: `ryu-manager ipop_ryu.apps.switchmode`."""
