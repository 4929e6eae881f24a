"""Regenerate screenshots/share.png, the share page in a real headless chromium:
`python -m screenshots.share_page` (needs chromium).

A real share (services/share) of a session running a fixed script is served on 127.0.0.1 and
opened in chromium (tests/peers/browser.py); the PNG is what the browser drew. Never edit it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from services.share.share import Share
from services.terminal.backend import TerminalSize
from services.terminal.local import LocalPty
from tests.peers.browser import Browser

OUT = Path(__file__).resolve().parent / "share.png"
SCRIPT = r"""
printf '\033[1;36m$\033[0m npm test\n\n'
printf ' \033[1;32mPASS\033[0m  src/parser.test.ts (12 tests)\n'
printf ' \033[1;32mPASS\033[0m  src/server.test.ts (31 tests)\n'
printf ' \033[1;31mFAIL\033[0m  src/share.test.ts\n'
printf '   \033[31m✕\033[0m a wrong token is refused \033[2m(14 ms)\033[0m\n\n'
printf '\033[1mTests:\033[0m  \033[31m1 failed\033[0m, \033[32m43 passed\033[0m, 44 total\n\n'
printf '\033[1;35m●\033[0m Agent: the token check compares the wrong field; fixing it…\n'
"""


async def main() -> None:
    os.environ.setdefault("ROOST_RUNTIME_DIR", tempfile.mkdtemp(prefix="roost-shot-"))
    size = TerminalSize(80, 14)
    share = Share("ada · tmux work", size)
    await share.start()
    session = LocalPty(["sh", "-c", SCRIPT + "sleep 30"], environ={**os.environ, "LANG": "C.UTF-8"})
    await session.start(size)
    try:
        while not any("fixing it" in row for row in share.stream.emulator.display):
            output = await session.read()
            assert isinstance(output, bytes) and output, "the script ended early"
            share.stream.output(output)
        async with Browser.open(share.url, size=(900, 520)) as browser:
            await browser.wait_for_text("fixing it")
            png = await browser.screenshot()
    finally:
        await session.close()
        await share.stop()
    OUT.write_bytes(png)
    print(OUT)


if __name__ == "__main__":
    asyncio.run(main())
