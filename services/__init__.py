"""Everything roost does to the world: paths, config, tmux, Docker, HTTP, PTYs, pollers.

Plain typed Python with no Textual and no Rich, so the command line, the TUI and the tests all
share it (an import-linter contract and a fresh-interpreter test keep it that way).
"""
