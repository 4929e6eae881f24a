"""Hosts: other machines reached with the system ssh client (one multiplexed connection each),
and what roost learns of them by probing (reachable, latency, versions)."""
