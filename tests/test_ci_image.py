"""`.ci/test-image.sh` builds the test image on a machine whose terminfo trees link into each other
(ncurses-term makes /usr/share/terminfo entries symlinks into /lib/terminfo)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.docker_fixtures import image_client, reachable_engine

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "test-image.sh"

pytestmark = pytest.mark.docker


def test_terminfo_trees_that_link_into_each_other_build_one_image(tmp_path: Path) -> None:
    engine = reachable_engine()
    client: docker.DockerClient = image_client(engine)
    shared, system = tmp_path / "usr-share-terminfo", tmp_path / "lib-terminfo"
    (system / "x").mkdir(parents=True)
    (system / "x" / "xterm-probe").write_bytes(b"an entry")
    (shared / "x").mkdir(parents=True)
    (shared / "x" / "xterm-probe").symlink_to(system / "x" / "xterm-probe")
    (shared / "x" / "xterm-alias").symlink_to("xterm-probe")
    tag = f"roost-test-terminfo:{uuid.uuid4().hex[:8]}"
    environment = {
        **os.environ,
        "DOCKER_HOST": str(engine.host),
        "ROOST_IMAGE_TERMINFO": f"{shared} {system}",
    }
    try:
        built = subprocess.run(
            [str(SCRIPT), tag], env=environment, capture_output=True, text=True, timeout=300
        )
        assert built.returncode == 0, built.stderr
        listing = client.containers.run(
            tag, ["ls", "-l", "/usr/share/terminfo/x"], network_mode="none", remove=True
        ).decode()
        entries = {line.split()[-1]: line[0] for line in listing.splitlines()[1:]}
        assert entries == {"xterm-probe": "-", "xterm-alias": "-"}, listing
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag, force=True)
        client.close()
