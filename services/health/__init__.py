"""Health: probing assistants' runtimes, scheduling the probes, and the one status vocabulary."""
