"""A loopback Vellum: the platform and any number of assistant runtimes on one HTTP server.

Every test and benchmark that speaks docs/protocol.md talks to this instead of the real platform.
It is a real HTTP/1.1 server on 127.0.0.1 (an ephemeral port) in a background thread. Tests
script what it answers and read back every request it received:

    with VellumPeer() as peer:  # or take the `vellum_peer` fixture
        alpha = peer.runtime("alpha", bearer="secret")
        alpha.health = json_reply({"status": "degraded", "message": "db slow"})
        ...  # point the code under test at alpha.base_url or peer.url
        [request] = peer.requests_to(alpha.path + "/v1/health")

Each runtime also plays the migrations endpoints (docs/protocol.md §4 and §4.6), scripted
through its `migrations`: the synchronous export, signed URLs, export-to-gcs jobs and their
status, and the bucket behind the signed URLs (`/gcs/...`, no auth: GET downloads, PUT uploads);
and the import side: `import-preflight` and `import` (the raw bundle as the body),
`preflight-from-gcs` and `import-from-gcs` (a bundle uploaded to the bucket first, the import a
job). Archives are `Artifact`s: deterministic bytes streamed in blocks, never built whole in
memory, so a benchmark can serve hundreds of MiB. A bundle sent to the peer is never held whole
either: each is counted and hashed as it arrives (`Received`), and only its first
`KEPT_BODY` bytes are kept in the recorded request.

The platform's terminal sessions (docs/protocol.md §5) run real programs in real PTYs, scripted
through `peer.terminals` (tests/peers/terminal.py); their output streams as Server-Sent Events.

Each runtime plays its activity and interactions (docs/protocol.md §7: the event stream, the
pending list, the answers), scripted through `runtime.activity` (tests/peers/activity.py); a
managed assistant's are at the platform root, scripted through `peer.managed_activity(id)`.

Routing is a table of (method, path pattern, handler); a handler turns a request into a `Reply`.
Closing is prompt: delayed and hanging answers wait on an event that closing sets, and open
connections are shut down so that every handler thread ends before `close()` returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.peers.activity import ActivityScript
from tests.peers.terminal import FLOOD_SIZE, Terminals, json_object


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    """Seconds to wait before answering, e.g. to outlast a client's timeout."""
    hang_after_headers: bool = False
    """Send the headers, then none of the body until the peer closes."""
    location: str | None = None
    """Sent as the `Location` header."""
    headers: tuple[tuple[str, str], ...] = ()
    """More headers, sent as they are."""
    stream: Artifact | None = None
    """When set, the body is this artifact's bytes (streamed) instead of `body`."""
    cut_at: int | None = None
    """Send only this many body bytes (Content-Length still announces them all), then `cut`."""
    cut: Literal["close", "stall"] = "close"
    """After `cut_at` bytes: hang up (a truncated body) or send nothing more until the peer
    closes (a stalled body)."""
    events: Generator[bytes, None, None] | None = None
    """When set, the body is these bytes as they come (Server-Sent Events), without
    Content-Length; the connection closes after the last."""
    trickle: float = 0.0
    """Seconds between two bytes of the body, sent one at a time."""
    flood: bytes | None = None
    """After `body`, these bytes again and again, without Content-Length, until `flood_size`
    bytes in all or the client hangs up."""
    flood_size: int = FLOOD_SIZE


def json_reply(value: object, *, status: int = 200, delay: float = 0.0) -> Reply:
    return Reply(status, json.dumps(value).encode(), delay=delay)


def text_reply(text: str, *, status: int = 200) -> Reply:
    return Reply(status, text.encode(), "text/plain; charset=utf-8")


def huge_reply(size: int = 1 << 20) -> Reply:
    """A healthy answer padded past `size` bytes."""
    return json_reply({"status": "healthy", "padding": "x" * size})


def flood_reply(start: bytes, repeated: bytes, content_type: str = "application/json") -> Reply:
    """`start`, then `repeated` over and over: an answer that never ends, as far as caps go."""
    return Reply(body=start, content_type=content_type, flood=repeated)


def hanging_reply() -> Reply:
    return Reply(body=b'{"status": "healthy"}', hang_after_headers=True)


def redirect_to(location: str) -> Reply:
    """Redirect to the given path; a path that redirects to itself never ends."""
    return Reply(status=302, location=location)


BLOCK_SIZE = 1 << 20
MANIFEST_HEADER = "X-Vbundle-Manifest-Sha256"


@dataclass(frozen=True)
class Artifact:
    """An archive of `size` deterministic bytes (one pseudo-random block, repeated), streamed."""

    size: int
    seed: str = "vbundle"
    corrupt: bool = False
    """The last byte is flipped: the bytes no longer match `sha256`, as after damage in transit."""

    @cached_property
    def sha256(self) -> str:
        """The digest of the intact bytes, computed once."""
        digest = hashlib.sha256()
        for chunk in self._chunks(corrupt=False):
            digest.update(chunk)
        return digest.hexdigest()

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The bytes as they are sent, at most one block at a time."""
        return self._chunks(self.corrupt)

    def content(self) -> bytes:
        """All of it at once: for small artifacts in assertions only."""
        return b"".join(self.chunks())

    @cached_property
    def _block(self) -> bytes:
        return hashlib.shake_256(self.seed.encode()).digest(max(1, min(self.size, BLOCK_SIZE)))

    def _chunks(self, corrupt: bool) -> Iterator[bytes | memoryview]:
        block, left = memoryview(self._block), self.size
        while left > 0:
            piece = block[: min(left, len(block))]
            left -= len(piece)
            if corrupt and left == 0:
                yield bytes(piece[:-1]) + bytes([piece[-1] ^ 0xFF])
            else:
                yield piece


def archive_reply(
    artifact: Artifact,
    *,
    checksum: bool = True,
    cut_at: int | None = None,
    cut: Literal["close", "stall"] = "close",
) -> Reply:
    """A synchronous export's answer: the archive, its sha256 in `X-Vbundle-Manifest-Sha256`."""
    headers = ((MANIFEST_HEADER, artifact.sha256),) if checksum else ()
    return Reply(
        content_type="application/octet-stream",
        headers=headers,
        stream=artifact,
        cut_at=cut_at,
        cut=cut,
    )


def in_progress_reply(
    job_id: str,
    form: Literal["nested", "flat", "message"] = "message",
    operation: Literal["export", "import"] = "export",
) -> Reply:
    """409 for an export (or import) already running, in each body form docs/protocol.md §4
    names; `message` is what the real runtime sends."""
    code = f"{operation}_in_progress"
    bodies: dict[str, object] = {
        "nested": {"error": {"code": code, "job_id": job_id}},
        "flat": {"code": code, "job_id": job_id},
        "message": {
            "error": {
                "code": code,
                "message": f"{operation.capitalize()} already in progress: {job_id}",
            }
        },
    }
    return json_reply(bodies[form], status=409)


def problem(message: str, path: str | None = None, code: str = "invalid") -> dict[str, object]:
    """One validation error or conflict as the runtime lists it: `{code, message, path?}`."""
    return {"code": code, "message": message, **({"path": path} if path is not None else {})}


def preflight_reply(
    *,
    can_import: bool = True,
    errors: Sequence[Mapping[str, object]] = (),
    conflicts: Sequence[object] = (),
    files: Sequence[tuple[str, str]] = (
        ("memory/notes.md", "create"),
        ("config.json", "overwrite"),
        ("skills/a.md", "unchanged"),
    ),
) -> Reply:
    """A preflight report (docs/protocol.md §4.6): `files` as (path, action), counted into the
    summary; `can_import: false` with `errors` (see `problem`) and `conflicts` for a refusal."""
    count = {action: sum(1 for _, a in files if a == action) for action in ACTIONS}
    return json_reply(
        {
            "can_import": can_import,
            "validation": {"is_valid": not errors, "errors": list(errors)},
            "files": [{"path": path, "action": action} for path, action in files],
            "summary": {
                "files_to_create": count["create"],
                "files_to_overwrite": count["overwrite"],
                "files_unchanged": count["unchanged"],
                "total_files": len(files),
            },
            "conflicts": list(conflicts),
        }
    )


ACTIONS = ("create", "overwrite", "unchanged")
IMPORTED = {
    "total_files": 3,
    "files_created": 1,
    "files_overwritten": 1,
    "files_skipped": 1,
    "backups_created": 1,
}


def import_result(
    *,
    success: bool = True,
    errors: Sequence[Mapping[str, object]] = (),
    warnings: Sequence[str] = (),
    reason: str | None = None,
) -> dict[str, object]:
    """An import's answer (docs/protocol.md §4.6), also a managed import job's `result`."""
    result: dict[str, object] = {
        "success": success,
        "summary": IMPORTED,
        "warnings": list(warnings),
    }
    if errors:
        result["errors"] = list(errors)
    if reason is not None:
        result["reason"] = reason
        result["message"] = reason
    return result


def import_reply(**result: Any) -> Reply:
    """The synchronous import's answer; arguments as `import_result`'s."""
    return json_reply(import_result(**result))


NO_BUNDLE = json_reply({"detail": "no bundle uploaded at bundle_url"}, status=400)
UNREACHABLE = json_reply({"detail": "Bad Gateway"}, status=502)


HEALTHY = json_reply({"status": "healthy", "version": "1.2.3"})
UNAUTHORIZED = json_reply({"detail": "Authentication credentials were not provided."}, status=401)
FORBIDDEN = json_reply({"detail": "You do not have permission to perform this action."}, status=403)
NOT_FOUND = json_reply({"detail": "Not found."}, status=404)
JOB_NOT_FOUND = json_reply(
    {"error": {"code": "not_found", "message": "Migration job not found"}}, status=404
)
EXPIRED = Reply(
    403,
    b"<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>",
    "application/xml",
)


KEPT_BODY = 1 << 20
"""A bundle's bytes past this are counted and hashed, not kept."""


@dataclass(frozen=True)
class Received:
    """A bundle as one request brought it: counted and hashed as it arrived."""

    size: int
    sha256: str
    complete: bool
    """Every byte its Content-Length announced arrived (a client that gives up mid-body
    leaves an incomplete one, which no endpoint acts on)."""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str
    """The request target exactly as sent: path and query."""
    headers: Mapping[str, str]
    """Names in lower case."""
    body: bytes
    """The body; for a bundle (`received`), its first `KEPT_BODY` bytes."""
    received: Received | None = None
    """Set for the requests whose body is a bundle (imports, preflights, bucket uploads)."""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))


JobStep = Reply | Mapping[str, object]


@dataclass
class Migrations:
    """A runtime's migrations endpoints (docs/protocol.md §4), in both path forms.

    Each list of replies is answered first, one reply per request and in order; once it is empty
    the endpoint does its real job. Every endpoint but the bucket checks the runtime's bearer.
    """

    artifact: Artifact = field(default_factory=lambda: Artifact(64 * 1024))
    """What exports produce: the sync export's body, and every bundle in the bucket."""
    export_replies: list[Reply] = field(default_factory=list)
    """`POST .../migrations/export`; then `archive_reply(artifact)`."""
    start_replies: list[Reply] = field(default_factory=list)
    """`POST .../migrations/export-to-gcs`; then 202 with a new job uploading to the bucket."""
    job_steps: list[JobStep] = field(default_factory=list)
    """Polls of any known job, one step per poll: a Reply as is, a mapping as the job's status
    (`job_id` and `type` added); then `complete` with the artifact's size and sha256."""
    download_replies: list[Reply] = field(default_factory=list)
    """`GET` of a signed download URL; then the artifact (without a checksum header)."""
    expired: bool = False
    """Signed download URLs are refused with 403, as the bucket does once they expire."""
    expires_at: str = "2099-01-01T00:00:00Z"
    """When the signed URLs it hands out say they expire."""
    jobs: dict[str, str | None] = field(default_factory=dict)
    """The jobs the runtime knows: id -> the bundle key it uploads to or imports from (None:
    someone else's). Import jobs' ids start with `import-`."""
    preflight_replies: list[Reply] = field(default_factory=list)
    """`POST .../import-preflight` and `.../preflight-from-gcs`; then `preflight_reply()`."""
    import_replies: list[Reply] = field(default_factory=list)
    """`POST .../migrations/import`; then `import_reply()`."""
    import_start_replies: list[Reply] = field(default_factory=list)
    """`POST .../import-from-gcs`; then 202 with a new import job, whose polls take
    `job_steps` and then complete with `import_result()`."""
    upload_replies: list[Reply] = field(default_factory=list)
    """`PUT` of a signed upload URL; then 200, the bundle kept in `bucket`."""
    bucket: dict[str, Received] = field(default_factory=dict)
    """What was uploaded to the bucket, by bundle key."""
    preflights: list[Received] = field(default_factory=list)
    """Every bundle a preflight looked at (received whole), in order."""
    imports: list[Received] = field(default_factory=list)
    """Every bundle the runtime imported (or started an import job of), in order: what a test
    asserts never happened after a failed step."""

    def restart(self) -> None:
        """The runtime restarts: it forgets every job (polls then answer 404)."""
        self.jobs.clear()


@dataclass
class Runtime:
    """One assistant runtime with its own base URL on the shared server; tests re-script it."""

    name: str
    base_url: str
    health: Reply = HEALTHY
    """The answer to `GET <base>/v1/health`."""
    managed_health: Reply = HEALTHY
    """The answer to `GET <base>/v1/assistants/<any id>/healthz/`."""
    bearer: str | None = None
    """When set, both answer 401 unless `Authorization: Bearer <bearer>` comes with the request."""
    migrations: Migrations = field(default_factory=Migrations)
    activity: ActivityScript = field(init=False)
    """Its §7 side (events, pending list, answers), in both path forms; its assistant id is
    the runtime's name."""

    def __post_init__(self) -> None:
        self.activity = ActivityScript(self.name)

    @property
    def path(self) -> str:
        """The base URL's path, e.g. `/rt/alpha`."""
        return urlsplit(self.base_url).path

    def answer(self, request: RecordedRequest, reply: Reply) -> Reply:
        return reply if self.authorized(request) else UNAUTHORIZED

    def authorized(self, request: RecordedRequest) -> bool:
        sent = request.headers.get("authorization")
        return self.bearer is None or sent == f"Bearer {self.bearer}"


@dataclass
class Platform:
    """The platform side, at the server's root URL: who may log in and what it lists."""

    organization_id: str = "org-1"
    session_tokens: set[str] = field(default_factory=set)
    api_keys: set[str] = field(default_factory=set)
    """Full keys, `vak_` included."""
    assistants: list[object] = field(default_factory=list)
    """The `results` of `GET /v1/assistants/`, sent as they are (malformed ones too)."""
    organizations_override: Reply | None = None
    """When set, `GET /v1/organizations/` answers this instead, without checking credentials."""
    assistants_override: Reply | None = None
    """When set, `GET /v1/assistants/` answers this instead, without checking credentials."""
    managed_health: Reply = HEALTHY
    """The answer to `GET /v1/assistants/<id>/healthz/` at the platform's own URL (a managed
    assistant's `runtimeUrl`), given the platform credentials."""

    def authorization(self, headers: Mapping[str, str]) -> Reply | None:
        """None when the headers may list assistants, else the refusal."""
        if headers.get("authorization") in {f"Bearer {key}" for key in self.api_keys}:
            return None
        if headers.get("x-session-token") not in self.session_tokens:
            return UNAUTHORIZED
        if headers.get("vellum-organization-id") != self.organization_id:
            return FORBIDDEN
        return None


T = TypeVar("T")
Handler = Callable[["VellumPeer", RecordedRequest, re.Match[str]], Reply]


def _organizations(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    platform = peer.platform
    if platform.organizations_override is not None:
        return platform.organizations_override
    if request.headers.get("x-session-token") not in platform.session_tokens:
        return UNAUTHORIZED
    return json_reply({"results": [{"id": platform.organization_id, "name": "Roost tests"}]})


def _platform_assistants(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    platform = peer.platform
    if platform.assistants_override is not None:
        return platform.assistants_override
    refusal = platform.authorization(request.headers)
    return refusal or json_reply({"results": platform.assistants})


def _platform_health(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    platform = peer.platform
    return platform.authorization(request.headers) or platform.managed_health


def _direct_health(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    runtime = peer.runtimes.get(match["runtime"])
    return runtime.answer(request, runtime.health) if runtime else NOT_FOUND


def _managed_health(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    runtime = peer.runtimes.get(match["runtime"])
    return runtime.answer(request, runtime.managed_health) if runtime else NOT_FOUND


def _migrations_call(
    peer: VellumPeer,
    request: RecordedRequest,
    match: re.Match[str],
    answer: Callable[[Runtime, Migrations], Reply],
) -> Reply:
    runtime = peer.runtimes.get(match["runtime"])
    if runtime is None:
        return NOT_FOUND
    if not runtime.authorized(request):
        return UNAUTHORIZED
    return answer(runtime, runtime.migrations)


def _sync_export(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    return _migrations_call(
        peer,
        request,
        match,
        lambda runtime, migrations: (
            peer.take(migrations.export_replies) or archive_reply(migrations.artifact)
        ),
    )


def _signed_url(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    def answer(runtime: Runtime, migrations: Migrations) -> Reply:
        body = json_object(request.body)
        if body.get("operation") == "upload":
            key = f"bundle-{peer.serial()}"
        elif body.get("operation") == "download" and isinstance(body.get("bundle_key"), str):
            key = body["bundle_key"]
        else:
            return json_reply({"detail": "operation must be upload or download"}, status=400)
        signature = f"X-Goog-Signature=sig{peer.serial()}"
        url = f"{peer.url}{BUCKET_PREFIX}/{runtime.name}/{key}?{signature}"
        return json_reply({"url": url, "bundle_key": key, "expires_at": migrations.expires_at})

    return _migrations_call(peer, request, match, answer)


def _export_to_gcs(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    def answer(runtime: Runtime, migrations: Migrations) -> Reply:
        scripted = peer.take(migrations.start_replies)
        if scripted is not None:
            return scripted
        upload_url = json_object(request.body).get("upload_url")
        if not isinstance(upload_url, str):
            return json_reply({"detail": "upload_url is required"}, status=400)
        job_id = f"export-{peer.serial()}"
        with peer.lock:
            migrations.jobs[job_id] = urlsplit(upload_url).path.rsplit("/", 1)[-1]
        return json_reply({"job_id": job_id, "status": "pending", "type": "export"}, status=202)

    return _migrations_call(peer, request, match, answer)


def _job_status(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    def answer(runtime: Runtime, migrations: Migrations) -> Reply:
        job_id = match["job"]
        if job_id not in migrations.jobs:
            return JOB_NOT_FOUND
        artifact = migrations.artifact
        kind = "import" if job_id.startswith("import-") else "export"
        result = (
            import_result()
            if kind == "import"
            else {"size": artifact.size, "sha256": artifact.sha256}
        )
        step = peer.take(migrations.job_steps) or {"status": "complete", "result": result}
        if isinstance(step, Reply):
            return step
        return json_reply({"job_id": job_id, "type": kind, **step})

    return _migrations_call(peer, request, match, answer)


def _bundle_call(
    peer: VellumPeer,
    request: RecordedRequest,
    match: re.Match[str],
    replies: Callable[[Migrations], list[Reply]],
    default: Reply,
    kept: Callable[[Migrations], list[Received]],
) -> Reply:
    """An endpoint whose body is the bundle: a scripted reply if any, else `default`, and the
    bundle kept in `kept` when it came whole and the answer is a success."""

    def answer(runtime: Runtime, migrations: Migrations) -> Reply:
        assert request.received is not None
        if not request.received.complete:
            return Reply(400, b'{"detail": "incomplete body"}')
        reply = peer.take(replies(migrations)) or default
        if 200 <= reply.status < 300 and _succeeded(reply):
            with peer.lock:
                kept(migrations).append(request.received)
        return reply

    return _migrations_call(peer, request, match, answer)


def _succeeded(reply: Reply) -> bool:
    """Whether a preflight or import answer says it worked (what the runtime would act on)."""
    body = json_object(reply.body)
    return body.get("can_import", True) is not False and body.get("success", True) is not False


def _import_preflight(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    return _bundle_call(
        peer,
        request,
        match,
        lambda m: m.preflight_replies,
        preflight_reply(),
        lambda m: m.preflights,
    )


def _import(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    return _bundle_call(
        peer, request, match, lambda m: m.import_replies, import_reply(), lambda m: m.imports
    )


def _uploaded(migrations: Migrations, body: bytes) -> tuple[str, Received] | None:
    """The bucket's bundle a `{bundle_url}` body names, if it was uploaded whole."""
    url = json_object(body).get("bundle_url")
    if not isinstance(url, str):
        return None
    key = urlsplit(url).path.rsplit("/", 1)[-1]
    received = migrations.bucket.get(key)
    return (key, received) if received is not None and received.complete else None


def _preflight_from_gcs(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    def answer(runtime: Runtime, migrations: Migrations) -> Reply:
        uploaded = _uploaded(migrations, request.body)
        reply = peer.take(migrations.preflight_replies) or (
            preflight_reply() if uploaded else NO_BUNDLE
        )
        if uploaded is not None and reply.status == 200 and _succeeded(reply):
            with peer.lock:
                migrations.preflights.append(uploaded[1])
        return reply

    return _migrations_call(peer, request, match, answer)


def _import_from_gcs(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    def answer(runtime: Runtime, migrations: Migrations) -> Reply:
        scripted = peer.take(migrations.import_start_replies)
        if scripted is not None:
            return scripted
        uploaded = _uploaded(migrations, request.body)
        if uploaded is None:
            return NO_BUNDLE
        job_id = f"import-{peer.serial()}"
        with peer.lock:
            migrations.jobs[job_id] = uploaded[0]
            migrations.imports.append(uploaded[1])
        return json_reply({"job_id": job_id, "status": "pending", "type": "import"}, status=202)

    return _migrations_call(peer, request, match, answer)


def _bucket_upload(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """A signed upload URL needs no credentials either; the bundle is kept by its key."""
    runtime = peer.runtimes.get(match["runtime"])
    if runtime is None:
        return NOT_FOUND
    migrations = runtime.migrations
    scripted = peer.take(migrations.upload_replies)
    if scripted is not None:
        return scripted
    assert request.received is not None
    with peer.lock:
        migrations.bucket[match["key"]] = request.received
    return Reply(200, b"", "text/plain")


def _bucket_download(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """A signed URL needs no credentials: whoever holds it may read the bundle."""
    runtime = peer.runtimes.get(match["runtime"])
    if runtime is None:
        return NOT_FOUND
    migrations = runtime.migrations
    if migrations.expired:
        return EXPIRED
    return peer.take(migrations.download_replies) or Reply(
        content_type="application/octet-stream", stream=migrations.artifact
    )


def _terminal(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """docs/protocol.md §5, played by `peer.terminals` behind the platform credentials."""
    refusal = peer.platform.authorization(request.headers)
    if refusal is not None:
        return refusal
    groups = match.groupdict()
    answer = peer.terminals.answer(
        match["assistant"],
        groups.get("session"),
        groups.get("action"),
        request.body,
    )
    if answer.events is not None:
        return Reply(
            answer.status,
            content_type="text/event-stream",
            delay=answer.delay,
            events=answer.events,
        )
    return json_reply(answer.body, status=answer.status, delay=answer.delay)


def _runtime_activity(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    runtime = peer.runtimes.get(match["runtime"])
    if runtime is None:
        return NOT_FOUND
    if not runtime.authorized(request):
        return UNAUTHORIZED
    return _activity_reply(runtime.activity, request, match)


def _managed_activity(peer: VellumPeer, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """docs/protocol.md §7 for a managed assistant, behind the platform credentials."""
    script = peer.managed.get(match["assistant"])
    if script is None:
        return NOT_FOUND
    return peer.platform.authorization(request.headers) or _activity_reply(script, request, match)


def _activity_reply(
    script: ActivityScript, request: RecordedRequest, match: re.Match[str]
) -> Reply:
    answer = script.answer(match["endpoint"], request.query, request.body)
    if answer.reply is not None:
        return answer.reply
    if answer.events is not None:
        return Reply(answer.status, content_type="text/event-stream", events=answer.events)
    return json_reply(answer.body, status=answer.status)


RUNTIME_PREFIX = "/rt"
BUCKET_PREFIX = "/gcs"
_MIGRATIONS = rf"{RUNTIME_PREFIX}/(?P<runtime>[^/]+)/v1/(?:assistants/[^/]+/)?migrations"
_BUCKET = rf"{BUCKET_PREFIX}/(?P<runtime>[^/]+)/(?P<key>[^/]+)"
_BUNDLE_BODIES = (re.compile(rf"{_MIGRATIONS}/(?:import|import-preflight)/?"), re.compile(_BUCKET))
"""The paths whose request body is a bundle: read as it comes, never held whole."""
_TERMINAL = r"/v1/assistants/(?P<assistant>[^/]+)/terminal/sessions/"
_TERMINAL_SESSION = rf"{_TERMINAL}(?P<session>[^/]+)/"
_STREAMED = r"(?P<endpoint>events|pending-interactions)/?"
_ANSWERED = r"(?P<endpoint>confirm|trust-rules|question-response|secret)/?"
_RUNTIME = rf"{RUNTIME_PREFIX}/(?P<runtime>[^/]+)/v1/(?:assistants/[^/]+/)?"
_MANAGED = r"/v1/assistants/(?P<assistant>[^/]+)/"
_ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("GET", re.compile(r"/v1/organizations/"), _organizations),
    ("GET", re.compile(r"/v1/assistants/"), _platform_assistants),
    ("GET", re.compile(r"/v1/assistants/[^/]+/healthz/"), _platform_health),
    ("GET", re.compile(rf"{RUNTIME_PREFIX}/(?P<runtime>[^/]+)/v1/health"), _direct_health),
    (
        "GET",
        re.compile(rf"{RUNTIME_PREFIX}/(?P<runtime>[^/]+)/v1/assistants/[^/]+/healthz/"),
        _managed_health,
    ),
    ("POST", re.compile(rf"{_MIGRATIONS}/export"), _sync_export),
    ("POST", re.compile(rf"{_MIGRATIONS}/signed-url/?"), _signed_url),
    ("POST", re.compile(rf"{_MIGRATIONS}/export-to-gcs"), _export_to_gcs),
    ("GET", re.compile(rf"{_MIGRATIONS}/jobs/(?P<job>[^/]+)"), _job_status),
    ("POST", re.compile(rf"{_MIGRATIONS}/import-preflight/?"), _import_preflight),
    ("POST", re.compile(rf"{_MIGRATIONS}/import/?"), _import),
    ("POST", re.compile(rf"{_MIGRATIONS}/preflight-from-gcs/?"), _preflight_from_gcs),
    ("POST", re.compile(rf"{_MIGRATIONS}/import-from-gcs/?"), _import_from_gcs),
    ("GET", re.compile(_BUCKET), _bucket_download),
    ("PUT", re.compile(_BUCKET), _bucket_upload),
    ("POST", re.compile(_TERMINAL), _terminal),
    ("GET", re.compile(rf"{_TERMINAL_SESSION}(?P<action>events)/"), _terminal),
    ("POST", re.compile(rf"{_TERMINAL_SESSION}(?P<action>input|resize)/"), _terminal),
    ("DELETE", re.compile(_TERMINAL_SESSION), _terminal),
    ("GET", re.compile(_RUNTIME + _STREAMED), _runtime_activity),
    ("POST", re.compile(_RUNTIME + _ANSWERED), _runtime_activity),
    ("GET", re.compile(_MANAGED + _STREAMED), _managed_activity),
    ("POST", re.compile(_MANAGED + _ANSWERED), _managed_activity),
)


class VellumPeer:
    """The server. Bound at construction (so `url` is known), serving between start and close."""

    def __init__(self, port: int = 0) -> None:
        """`port` 0: any free one."""
        self.platform = Platform()
        self.runtimes: dict[str, Runtime] = {}
        self.terminals = Terminals()
        """The platform's terminal sessions, on real PTYs (tests/peers/terminal.py)."""
        self.managed: dict[str, ActivityScript] = {}
        """Managed assistants' §7 sides, by assistant id (see `managed_activity`)."""
        self._requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        """Guards the recorded requests and every scripted list handlers consume."""
        self._serials = itertools.count(1)
        self._stopping = threading.Event()
        self._server = _Server(self, port)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def runtime(
        self,
        name: str,
        *,
        health: Reply = HEALTHY,
        managed_health: Reply = HEALTHY,
        bearer: str | None = None,
    ) -> Runtime:
        """A new runtime with its base URL at `<url>/rt/<name>`."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in self.runtimes:
            raise ValueError(f"runtime name {name!r} is not a new, URL-safe name")
        base_url = f"{self.url}{RUNTIME_PREFIX}/{name}"
        runtime = Runtime(name, base_url, health, managed_health, bearer)
        self.runtimes[name] = runtime
        return runtime

    def managed_activity(self, assistant_id: str) -> ActivityScript:
        """The §7 side of a managed assistant, at `<url>/v1/assistants/<id>/...` behind the
        platform credentials; made on first use (other ids answer 404)."""
        with self.lock:
            return self.managed.setdefault(assistant_id, ActivityScript(assistant_id))

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, in order of arrival."""
        with self.lock:
            return tuple(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def take(self, script: list[T]) -> T | None:
        """The first scripted item, removed; None when there is none."""
        with self.lock:
            return script.pop(0) if script else None

    def serial(self) -> int:
        """A number never handed out before on this peer: job ids, bundle keys, signatures."""
        with self.lock:
            return next(self._serials)

    def start(self) -> None:
        # A short poll interval: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="vellum-peer", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        self.terminals.close()  # ends every event stream, so no handler waits on one
        for script in [
            *(runtime.activity for runtime in self.runtimes.values()),
            *self.managed.values(),
        ]:
            script.close()  # ends every activity stream
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.hang_up()
        self._server.server_close()  # joins the handler threads, which now all finish at once

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def serve(self, handler: _RequestHandler) -> None:
        """Record one request, route it, answer it (on the handler's thread)."""
        length = int(handler.headers.get("Content-Length") or 0)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        path = urlsplit(handler.path).path
        if any(pattern.fullmatch(path) for pattern in _BUNDLE_BODIES):
            body, received = _read_bundle(handler, length)
            request = RecordedRequest(handler.command, handler.path, headers, body, received)
        else:
            request = RecordedRequest(
                handler.command, handler.path, headers, handler.rfile.read(length)
            )
        with self.lock:
            self._requests.append(request)
        reply = NOT_FOUND
        for method, pattern, route in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                reply = route(self, request, match)
                break
        self._send(handler, reply)

    def _send(self, handler: _RequestHandler, reply: Reply) -> None:
        if reply.delay and self._stopping.wait(reply.delay):
            handler.close_connection = True
            return
        if reply.events is not None:
            self._send_events(handler, reply, reply.events)
            return
        if reply.flood is not None:
            self._send_flood(handler, reply, reply.flood)
            return
        length = len(reply.body) if reply.stream is None else reply.stream.size
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(length))
        if reply.location is not None:
            handler.send_header("Location", reply.location)
        for name, value in reply.headers:
            handler.send_header(name, value)
        handler.end_headers()
        if reply.hang_after_headers:
            self._stopping.wait()
            handler.close_connection = True
            return
        chunks = iter((reply.body,)) if reply.stream is None else reply.stream.chunks()
        if reply.trickle:
            for chunk in chunks:
                for byte in bytes(chunk):
                    if self._stopping.wait(reply.trickle):
                        return
                    handler.wfile.write(bytes((byte,)))
            return
        if reply.cut_at is None:
            for chunk in chunks:
                handler.wfile.write(chunk)
            return
        left = reply.cut_at
        for chunk in chunks:
            if left <= 0:
                break
            handler.wfile.write(chunk[:left])
            left -= len(chunk)
        handler.close_connection = True  # the rest never comes: hang up, or first stall
        if reply.cut == "stall":
            self._stopping.wait()

    def _send_flood(self, handler: _RequestHandler, reply: Reply, repeated: bytes) -> None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Connection", "close")
        for name, value in reply.headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.close_connection = True
        block = repeated * max(1, (1 << 16) // len(repeated))
        sent = len(reply.body)
        handler.wfile.write(reply.body)
        while sent < reply.flood_size and not self._stopping.is_set():
            handler.wfile.write(block)
            sent += len(block)

    def _send_events(
        self, handler: _RequestHandler, reply: Reply, events: Generator[bytes, None, None]
    ) -> None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        with contextlib.closing(events):  # a client that hung up stops its stream too
            for chunk in events:
                handler.wfile.write(chunk)


def _read_bundle(handler: _RequestHandler, length: int) -> tuple[bytes, Received]:
    """Read a bundle body block by block, hashing it; keep only its first `KEPT_BODY` bytes."""
    digest, kept, left = hashlib.sha256(), bytearray(), length
    while left > 0:
        try:
            block = handler.rfile.read(min(left, BLOCK_SIZE))
        except OSError:
            block = b""
        if not block:
            handler.close_connection = True  # the client gave up mid-body
            break
        digest.update(block)
        if len(kept) < KEPT_BODY:
            kept += block[: KEPT_BODY - len(kept)]
        left -= len(block)
    return bytes(kept), Received(length - left, digest.hexdigest(), left == 0)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    """The listen backlog (socketserver's default is 5): hundreds of clients connecting at once
    (event streams) must not have their SYNs dropped and retried a second or more later."""

    def __init__(self, peer: VellumPeer, port: int) -> None:
        self.allow_reuse_address = True
        super().__init__(("127.0.0.1", port), _RequestHandler)
        self.peer = peer
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Registered here, on the serving thread, so none is missed once serving has stopped.
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def hang_up(self) -> None:
        """Shut down every open connection: handlers waiting on a keep-alive read return."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out hang up mid-answer: that is what many tests provoke on purpose.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Replies and SSE events go out at once, as a production server sends them: with Nagle's
    # algorithm a body written after its headers waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.peer.serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the peer records requests itself."""


@contextlib.contextmanager
def refused_url() -> Iterator[str]:
    """A loopback URL whose port is held but not listening: every connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
def vellum_peer() -> Iterator[VellumPeer]:
    """A serving peer, closed after the test. Modules load it with `pytest_plugins`."""
    with VellumPeer() as peer:
        yield peer
