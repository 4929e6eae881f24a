"""What a runtime says about an import (docs/protocol.md §4.6): the preflight report and the
import's outcome, read leniently from its JSON and kept in a restore job's record.

Everything is optional on the wire; what is missing stays None (a count) or empty (a list).
Text from the runtime is made printable and shortened, and at most `PROBLEMS_KEPT` errors,
conflicts and warnings are kept (`more` counts the rest), so a runtime listing a million files
makes a record of a few KiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.core.safe_text import printable

PROBLEMS_KEPT = 50
TEXT_KEPT = 300
"""Characters of one message or path kept."""


@dataclass(frozen=True)
class Problem:
    """One validation error, conflict or import error, with the path it concerns if any."""

    message: str
    path: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_json(self) -> dict[str, object]:
        return {"message": self.message, "path": self.path, "code": self.code}

    @classmethod
    def parse(cls, item: object) -> Problem | None:
        """A runtime's `{code, message, path?}` (or a bare string); None for anything else."""
        if isinstance(item, str) and item.strip():
            return cls(_text(item))
        if not isinstance(item, Mapping):
            return None
        message = _first_text(item, ("message", "reason", "description", "detail", "error"))
        path, code = item.get("path"), item.get("code")
        path = _text(path) if isinstance(path, str) and path else None
        code = _text(code) if isinstance(code, str) and code else None
        if message is None and path is None and code is None:
            return None
        return cls(_text(message) if message else (code or "conflict"), path, code)


@dataclass(frozen=True)
class Preflight:
    """The dry run's report: what the import would do, and what stops it."""

    can_import: bool
    to_create: int | None = None
    to_overwrite: int | None = None
    unchanged: int | None = None
    total: int | None = None
    errors: tuple[Problem, ...] = ()
    """Validation errors."""
    conflicts: tuple[Problem, ...] = ()
    more: int = 0
    """Errors and conflicts not kept (past `PROBLEMS_KEPT`)."""

    @classmethod
    def parse(cls, body: Mapping[str, object]) -> Preflight:
        """Read a preflight answer; `can_import` must be there (True only when it says so)."""
        validation = body.get("validation")
        errors, more_errors = _problems(
            validation.get("errors") if isinstance(validation, Mapping) else None
        )
        conflicts, more_conflicts = _problems(body.get("conflicts"))
        summary = body.get("summary")
        counts = summary if isinstance(summary, Mapping) else {}
        files = body.get("files")
        actions = (
            [item.get("action") for item in files if isinstance(item, Mapping)]
            if isinstance(files, list)
            else None
        )

        def count(key: str, action: str) -> int | None:
            value = _count(counts.get(key))
            if value is None and actions is not None:
                return sum(1 for seen in actions if seen == action)
            return value

        total = _count(counts.get("total_files"))
        return cls(
            can_import=body.get("can_import") is True,
            to_create=count("files_to_create", "create"),
            to_overwrite=count("files_to_overwrite", "overwrite"),
            unchanged=count("files_unchanged", "unchanged"),
            total=total if total is not None or actions is None else len(actions),
            errors=errors,
            conflicts=conflicts,
            more=more_errors + more_conflicts,
        )

    def summary(self) -> str:
        """`2 to create, 1 to overwrite, 3 unchanged (6 files)`."""
        parts = [
            f"{value} {label}"
            for value, label in (
                (self.to_create, "to create"),
                (self.to_overwrite, "to overwrite"),
                (self.unchanged, "unchanged"),
            )
            if value is not None
        ]
        total = f" ({self.total} files)" if self.total is not None else ""
        return (", ".join(parts) or "no file counts") + total

    def to_json(self) -> dict[str, object]:
        return {
            "can_import": self.can_import,
            "to_create": self.to_create,
            "to_overwrite": self.to_overwrite,
            "unchanged": self.unchanged,
            "total": self.total,
            "errors": [problem.to_json() for problem in self.errors],
            "conflicts": [problem.to_json() for problem in self.conflicts],
            "more": self.more,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Preflight:
        return cls(
            can_import=data.get("can_import") is True,
            to_create=_count(data.get("to_create")),
            to_overwrite=_count(data.get("to_overwrite")),
            unchanged=_count(data.get("unchanged")),
            total=_count(data.get("total")),
            errors=_problems(data.get("errors"))[0],
            conflicts=_problems(data.get("conflicts"))[0],
            more=_count(data.get("more")) or 0,
        )


@dataclass(frozen=True)
class ImportOutcome:
    """The import's answer (or a managed import job's result)."""

    success: bool
    reason: str | None = None
    total: int | None = None
    created: int | None = None
    overwritten: int | None = None
    skipped: int | None = None
    backups_created: int | None = None
    """Copies the runtime kept of the files it overwrote."""
    errors: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    more: int = 0
    """Errors and warnings not kept."""

    @classmethod
    def parse(cls, body: Mapping[str, object]) -> ImportOutcome:
        """Read an import answer; `success` must be there (True only when it says so)."""
        summary = body.get("summary")
        counts = summary if isinstance(summary, Mapping) else {}
        errors, more_errors = _problems(body.get("errors"))
        warnings, more_warnings = _problems(body.get("warnings"))
        reason = _first_text(body, ("message", "reason"))
        return cls(
            success=body.get("success") is True,
            reason=_text(reason) if reason else None,
            total=_count(counts.get("total_files")),
            created=_count(counts.get("files_created")),
            overwritten=_count(counts.get("files_overwritten")),
            skipped=_count(counts.get("files_skipped")),
            backups_created=_count(counts.get("backups_created")),
            errors=errors,
            warnings=tuple(str(warning) for warning in warnings),
            more=more_errors + more_warnings,
        )

    def summary(self) -> str:
        """`1 created, 1 overwritten, 1 skipped (3 files, 1 backup kept)`."""
        parts = [
            f"{value} {label}"
            for value, label in (
                (self.created, "created"),
                (self.overwritten, "overwritten"),
                (self.skipped, "skipped"),
            )
            if value is not None
        ]
        extra = [f"{self.total} files"] if self.total is not None else []
        if self.backups_created:
            extra.append(f"{self.backups_created} kept by the runtime as backups")
        tail = f" ({', '.join(extra)})" if extra else ""
        return (", ".join(parts) or "no file counts") + tail

    def to_json(self) -> dict[str, object]:
        return {
            "success": self.success,
            "reason": self.reason,
            "total": self.total,
            "created": self.created,
            "overwritten": self.overwritten,
            "skipped": self.skipped,
            "backups_created": self.backups_created,
            "errors": [problem.to_json() for problem in self.errors],
            "warnings": list(self.warnings),
            "more": self.more,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ImportOutcome:
        reason = data.get("reason")
        return cls(
            success=data.get("success") is True,
            reason=reason if isinstance(reason, str) else None,
            total=_count(data.get("total")),
            created=_count(data.get("created")),
            overwritten=_count(data.get("overwritten")),
            skipped=_count(data.get("skipped")),
            backups_created=_count(data.get("backups_created")),
            errors=_problems(data.get("errors"))[0],
            warnings=tuple(str(warning) for warning in _problems(data.get("warnings"))[0]),
            more=_count(data.get("more")) or 0,
        )


def _problems(items: object) -> tuple[tuple[Problem, ...], int]:
    """The problems of a list (at most `PROBLEMS_KEPT`), and how many more were left out."""
    if not isinstance(items, list):
        return (), 0
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if len(problems) == PROBLEMS_KEPT:
            return tuple(problems), len(items) - index
        if (problem := Problem.parse(item)) is not None:
            problems.append(problem)
    return tuple(problems), 0


def _first_text(data: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _text(value: str) -> str:
    text = printable(" ".join(value.split()))
    return text if len(text) <= TEXT_KEPT else text[: TEXT_KEPT - 1] + "…"
