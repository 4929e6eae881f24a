"""Health: what a probe takes (a target), probing assistants' runtimes, scheduling the probes,
and the one status vocabulary."""
