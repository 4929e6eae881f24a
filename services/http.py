"""The one HTTP client configuration roost uses (health probes, platform, runtimes).

httpcore checks every pooled connection on every request, so a pool full of idle keep-alive
connections makes each request dearer; a probe every few seconds needs only a few of them.
"""

from __future__ import annotations

import httpx

KEEPALIVE_CONNECTIONS = 32
MAX_CONNECTIONS = 64


def http_client() -> httpx.AsyncClient:
    """Redirects are followed by hand where they are followed at all (see services.health)."""
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=KEEPALIVE_CONNECTIONS,
        keepalive_expiry=5.0,
    )
    return httpx.AsyncClient(limits=limits, follow_redirects=False)
