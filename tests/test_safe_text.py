"""Outside text escaped for a terminal, error texts without credentials, tokens checked."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.logs import configure_logging
from services.core.safe_text import (
    HIDDEN,
    error_text,
    is_printable,
    printable,
    remember_secret,
    scrub,
)
from services.vellum.tokens import MAX_TOKEN_LENGTH, TokenFileError, check_token, token_problem

UNSAFE = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)


@given(st.text())
def test_printable_leaves_no_control_character_and_is_stable(text: str) -> None:
    shown = printable(text)

    assert not UNSAFE & set(shown) and all(not "\ud800" <= c <= "\udfff" for c in shown)
    assert is_printable(shown)
    assert printable(shown) == shown


@given(
    st.text(
        alphabet=st.characters(blacklist_characters=sorted(UNSAFE), blacklist_categories=["Cs"])
    )
)
def test_printable_text_is_left_as_it_is(text: str) -> None:
    assert printable(text) is text


def test_escapes_are_visible_and_say_what_was_there() -> None:
    assert printable("ok\x1b]0;pwned\x07\u202eevil\r\n\t\x9b") == (
        "ok\\e]0;pwned\\x07\\u202eevil\\r\\n\\t\\x9b"
    )
    assert printable("line one\nline two\x1b", keep_newlines=True) == "line one\nline two\\e"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A 127.0.0.1 listener that accepts and never answers: httpx checks headers as it sends."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()
    for connection in accepted:
        connection.close()


@pytest.mark.parametrize(
    "token", ["token-with-newline\n", "token-with-crlf\r\n", "inner\nnewline", "quote'd\n"]
)
def test_httpx_refusing_a_header_quotes_it_and_error_text_hides_it(
    silent_server: str, token: str
) -> None:
    with pytest.raises(httpx.LocalProtocolError) as refused:
        httpx.get(silent_server, headers={"Authorization": f"Bearer {token}"}, timeout=5)

    assert repr(token.encode())[2:-1].split("\\")[0] in str(refused.value)  # httpx quotes it
    shown = error_text(refused.value)
    assert shown == f"Illegal header value {HIDDEN}"


def test_scrub_hides_credentials_and_remembered_secrets_but_not_words() -> None:
    remember_secret("remembered-secret-value")

    assert scrub("Authorization: Bearer abc.def; X-Session-Token: s3cr3t") == (
        f"Authorization: {HIDDEN}; X-Session-Token: {HIDDEN}"
    )
    assert scrub("sent bearer xyz") == f"sent bearer {HIDDEN}"
    assert scrub("{'x-session-token': 'q'}") == f"{{'x-session-token': '{HIDDEN}'}}"
    assert scrub("it said remembered-secret-value!") == f"it said {HIDDEN}!"
    assert scrub("authorization failed: run vellum login") == (
        "authorization failed: run vellum login"
    )


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_printable_ascii_without_spaces_is_a_token(value: str) -> None:
    assert token_problem(value) is None


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8),
    st.sampled_from(["\n", "\r\n", "\r", " ", "\t", "\x00", "\x1b", "\x7f", "é", "\u202e"]),
    st.integers(min_value=0),
)
def test_a_token_with_anything_else_is_refused_without_being_quoted(
    value: str, bad: str, where: int
) -> None:
    value = "Zq9" + value  # the message never has "Zq9": finding it there means a leak
    cut = where % (len(value) + 1)
    token = value[:cut] + bad + value[cut:]

    with pytest.raises(TokenFileError) as refused:
        check_token(token, "/some/file: accessToken")

    message = str(refused.value)
    assert message.startswith("/some/file: accessToken: the token contains ")
    assert "Zq9" not in message
    assert f"(character {cut + 1} of {len(token)})" in message


def test_an_empty_or_huge_token_is_refused() -> None:
    assert token_problem("") == "is empty"
    assert token_problem("x" * (MAX_TOKEN_LENGTH + 1)) == (
        f"is longer than {MAX_TOKEN_LENGTH} characters"
    )


def test_the_log_holds_no_secret_and_no_control_character(tmp_path: Path) -> None:
    log_file = tmp_path / "roost.log"
    configure_logging(log_file)
    remember_secret("remembered-in-a-traceback")
    log = logging.getLogger("roost.test")

    log.warning("probe failed: %s", "Illegal header value b'Bearer abc\\n' \x1b]0;x\x07")
    try:
        raise RuntimeError("it carried remembered-in-a-traceback\x1b[2J")
    except RuntimeError:
        log.exception("unexpected\nforged line")
    logging.shutdown()

    text = log_file.read_text()
    assert "abc" not in text and "remembered-in-a-traceback" not in text
    assert not UNSAFE - {"\n"} & set(text)
    assert "probe failed: Illegal header value [hidden] \\e]0;x\\x07" in text
    assert "unexpected\\nforged line" in text
    assert "Traceback (most recent call last):\n" in text
    assert f"RuntimeError: it carried {HIDDEN}\\e[2J" in text
