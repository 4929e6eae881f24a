"""Everything roost does to the world, as plain typed Python shared by the commands, the console
and the tests: the application layer (`roost.py`, one method per operation; `doctor.py`), the
start-up `context.py`, and the domain packages below them (fleet, jobs, terminal, health, vellum,
docker, core). docs/architecture.md draws the layers; pyproject.toml's import contracts keep them.

No Textual and no Rich here (an import-linter contract and a fresh-interpreter test keep it so).
"""
