"""The terminal-emulator corpus: recorded byte streams (`corpus/`), how they were made
(`record.py`) and the tmux oracle they are checked against (`oracle.py`)."""
