"""The filter language of the fleet table and `roost ps`: words, `field:value` terms and
quoted values, matched against assistants and their sessions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.core.errors import RoostError
from services.fleet.model import FILTER_FIELDS, TMUX_SESSION, Assistant, SearchText, session_status
from services.terminal.tmux import TmuxSession

_FIELD = re.compile(r"([A-Za-z_]\w*):")


class FilterError(RoostError):
    """A filter the user typed that cannot mean anything (a field that does not exist)."""


@dataclass(frozen=True)
class FilterTerm:
    """One word of a filter: `value` (lower-cased) must occur in `field`, or in any field."""

    field: str | None
    value: str


def parse_filter(query: str) -> tuple[FilterTerm, ...]:
    """The terms of `query`: words separated by blanks, each `field:value` or a bare value; a
    value in double quotes may hold blanks (`name:"my bot"`), and an unclosed quote runs to the
    end (the user is still typing it). Raises FilterError for a field that does not exist."""
    terms: list[FilterTerm] = []
    position, end = 0, len(query)
    while position < end:
        if query[position].isspace():
            position += 1
            continue
        field_name: str | None = None
        if (named := _FIELD.match(query, position)) is not None:
            field_name = named[1].lower()
            if field_name not in FILTER_FIELDS:
                raise FilterError(
                    f"unknown field {named[1]!r}; fields: {', '.join(FILTER_FIELDS)} "
                    '(quote a word to search for it as typed: "a:b")'
                )
            position = named.end()
        if query.startswith('"', position):
            closing = query.find('"', position + 1)
            stop = end if closing < 0 else closing
            value, position = query[position + 1 : stop], stop + 1
        else:
            stop = position
            while stop < end and not query[stop].isspace():
                stop += 1
            value, position = query[position:stop], stop
        terms.append(FilterTerm(field_name, value.lower()))
    return tuple(terms)


def filter_fleet(
    assistants: Iterable[Assistant], query: str
) -> list[tuple[Assistant, tuple[TmuxSession, ...]]]:
    """The assistants and sessions matching `query` (see `parse_filter`): every term must match,
    a bare one anywhere, a `field:value` one in that field (kind:docker, status:sleeping).

    An assistant that matches keeps all its sessions; one that does not is still shown, for
    context, when any of its sessions match. Raises FilterError for a field that does not exist.
    """
    terms = parse_filter(query)
    if not terms:
        return [(assistant, assistant.sessions) for assistant in assistants]

    def matches(text: SearchText) -> bool:
        return all(_has(text, term) for term in terms)

    # A filter keystroke runs this over every assistant: bare words (what is typed nearly
    # always) are looked for inline, without a call per assistant.
    words = [term.value for term in terms if term.field is None]
    fielded = [term for term in terms if term.field is not None]
    shown: list[tuple[Assistant, tuple[TmuxSession, ...]]] = []
    for assistant in assistants:
        text = assistant.search_text
        everything = text.everything
        if all(word in everything for word in words) and (
            not fielded or all(_has(text, term) for term in fielded)
        ):
            shown.append((assistant, assistant.sessions))
        elif assistant.sessions:
            sessions = tuple(
                session
                for session in assistant.sessions
                if matches(_session_text(assistant, session))
            )
            if sessions:
                shown.append((assistant, sessions))
    return shown


def _session_text(assistant: Assistant, session: TmuxSession) -> SearchText:
    return SearchText.of(
        {
            **dict.fromkeys(FILTER_FIELDS, ""),
            "name": session.name,
            "kind": TMUX_SESSION,
            "where": assistant.where,
            "status": session_status(session),
        }
    )


def _has(text: SearchText, term: FilterTerm) -> bool:
    if term.field is None:
        return term.value in text.everything
    return term.value in text.fields[term.field]


Shown = list[tuple[Assistant, tuple[TmuxSession, ...]]]


class FleetFilter:
    """`filter_fleet` for a screen where the query changes on every keystroke and the fleet far
    less often. For one fleet (the same sequence object) it remembers what each query showed:
    deleting a character shows a remembered result at once, and a query that only narrows a
    remembered one (each term holds that one's term, more terms after) looks only at the
    rows that one showed. With 10,000 assistants a pass over them all is most of a keystroke.
    """

    REMEMBERED = 32

    def __init__(self) -> None:
        self._fleet: Sequence[Assistant] | None = None
        self._results: dict[str, tuple[tuple[FilterTerm, ...], Shown]] = {}

    def shown(self, fleet: Sequence[Assistant], query: str) -> Shown:
        """`filter_fleet(fleet, query)`; raises FilterError as it does."""
        if fleet is not self._fleet:
            self._fleet, self._results = fleet, {}
        if (known := self._results.get(query)) is not None:
            return known[1]
        terms = parse_filter(query)
        candidates: Iterable[Assistant] = fleet
        narrowest = len(fleet) + 1
        for old_terms, old_shown in self._results.values():
            if len(old_shown) < narrowest and _narrows(terms, old_terms):
                candidates, narrowest = (a for a, _ in old_shown), len(old_shown)
        result = filter_fleet(candidates, query)
        if len(self._results) >= self.REMEMBERED:
            del self._results[next(iter(self._results))]
        self._results[query] = (terms, result)
        return result


def _narrows(terms: Sequence[FilterTerm], wider: Sequence[FilterTerm]) -> bool:
    """Whether whatever `terms` match, `wider` matches too: each of `wider`'s terms is in the
    same place in `terms`, on the same field, its value within the new one's."""
    return len(terms) >= len(wider) and all(
        new.field == old.field and old.value in new.value
        for new, old in zip(terms, wider, strict=False)
    )
