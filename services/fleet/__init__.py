"""The fleet: every assistant roost knows of, as a model built from its sources without I/O,
and the sources that feed it."""
