"""Reusable widgets: they draw what they are given and do no I/O (they never import services)."""
