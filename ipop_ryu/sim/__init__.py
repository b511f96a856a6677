"""Many controllers in one process over a simulated network (issue 9): how the full mesh of
peers scales. world.py runs the sites, scenarios.py measures them, `ipop-ryu sim` reports."""
