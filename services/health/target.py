"""What a health probe takes: one assistant's runtime URL and the credentials to send it.

The fleet builds these (services/fleet/builder.py `health_targets`); the prober and the monitor
take them without knowing the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HealthTarget:
    """How to probe one assistant's health: direct (`/v1/health`) or managed (platform)."""

    key: str
    assistant_id: str
    url: str
    managed: bool
    token_file: str | None = None
    """A file holding the bearer token (a guardian token or a config runtime's token file)."""
    inline_token: str | None = field(default=None, repr=False)
    """The lockfile entry's `bearerToken`: a secret, never shown."""
    lockfile: str = "the lockfile"
    """The file `inline_token` comes from, for errors about it."""
