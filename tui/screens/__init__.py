"""roost's screens."""
