"""How a pane holds a terminal session: watching or driving.

A setting (`[terminal] local_mode` and `remote_mode` in config.toml) as much as a property of every
terminal backend, so it lives in the core both stand on.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """How a pane holds a session: WATCH never sends input (pairing), DRIVE types into it."""

    WATCH = "watch"
    DRIVE = "drive"
