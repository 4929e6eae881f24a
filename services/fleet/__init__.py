"""The fleet: every assistant roost knows of (model), built from its sources without I/O
(builder), picked by the filter language and ordered (filter, sort), and the sources that
feed it."""
