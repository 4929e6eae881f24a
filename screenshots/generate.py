"""Regenerate the SVGs in screenshots/ by driving the real app: `python -m screenshots.generate`.

Draws the scenes of the snapshot tests (tests/demo.py) that the README may show, each with a
private tmux server (`tmux -L roost-demo`) holding a few sessions (even the scenes the snapshots
draw without tmux; fake coding agents in some, hosts over a private sshd in one), 160x45 cells,
a frozen clock. Never edit the
SVGs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from tests.demo import SCENES, Scene, demo_app, demo_hosts, demo_server
from tests.peers.vellum import VellumPeer, json_reply
from tests.pilot import SIZE

OUT = Path(__file__).resolve().parent


async def shoot(name: str, scene: Scene, directory: Path, healthy_url: str) -> Path:
    # A state database and files of its own: what one scene seeds (jobs, events, backups,
    # agents' projects) shows in no other.
    place = directory / name
    place.mkdir()
    os.environ["ROOST_STATE_DIR"] = str(place / "state")
    os.environ["ROOST_DATA_DIR"] = str(place / "data")  # the backups scene writes its files
    with demo_server(scene.sessions) as server, demo_hosts(scene.hosts) as hosts:
        app = demo_app(
            server,
            place,
            healthy_url,
            seed=scene.seed,
            shell=scene.shell,
            agents=scene.agents,
            hosts=hosts,
        )
        async with app.run_test(size=SIZE) as pilot:
            await scene.show(pilot)
            await pilot.pause()
            path = OUT / f"{name}.svg"
            app.save_screenshot(path.name, path=str(OUT))
    return path


def main() -> int:
    # Everything roost would write goes to a scratch directory, never to the user's files.
    scratch = tempfile.mkdtemp(prefix="roost-screenshots-")
    for variable in ("ROOST_CONFIG_DIR", "ROOST_CACHE_DIR", "ROOST_LOG_DIR"):
        os.environ[variable] = f"{scratch}/{variable.lower()}"
    home = Path(scratch) / "home"  # the demo's agents write their settings there
    home.mkdir()
    os.environ["HOME"] = str(home)
    os.environ.pop("TMUX", None)
    # Unlike the snapshots, one assistant answers its health checks for real (its latency
    # varies from run to run, which a screenshot may show and a snapshot may not).
    with VellumPeer() as peer:
        runtime = peer.runtime("ada", health=json_reply({"status": "healthy", "version": "0.7.4"}))
        for name, scene in SCENES.items():
            if not scene.screenshot:
                continue
            shot = asyncio.run(shoot(name, scene, Path(scratch), runtime.base_url))
            print(shot.relative_to(OUT.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
