"""Sharing a terminal session read-only with a browser: `roost share` and the pane key.

`stream.py` keeps what a share shows (an emulator of the session and each viewer's queue),
`server.py` serves it (HTTP, the websocket of `websocket.py`, the ALiS frames of `alis.py`,
the page and asciinema-player from `static/`), and `shares.py` keeps the list of running
shares (their process and port, never their token) that `roost share --stop` reads.
"""
