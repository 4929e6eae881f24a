"""Reading the Vellum tokens: refusing a platform token others can read, never showing a token."""

from __future__ import annotations

import json

import pytest

from services.vellum.environment import VellumEnvironment
from services.vellum.tokens import (
    GuardianToken,
    PlatformToken,
    TokenFileError,
    read_guardian_token,
    read_platform_token,
)

SECRET = "session-secret-3f9a"


def write_platform_token(text: str, mode: int = 0o600) -> VellumEnvironment:
    environment = VellumEnvironment.resolve()
    path = environment.platform_token_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return environment


def write_guardian_token(assistant_id: str, text: str) -> VellumEnvironment:
    environment = VellumEnvironment.resolve()
    path = environment.config_dir / "assistants" / assistant_id / "guardian-token.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return environment


def test_no_platform_token_file_means_not_logged_in() -> None:
    assert read_platform_token(VellumEnvironment.resolve().platform_token_file) is None


def test_the_platform_token_is_one_stripped_line() -> None:
    environment = write_platform_token(f"  {SECRET}\n")

    token = read_platform_token(environment.platform_token_file)

    assert token == PlatformToken(SECRET, environment.platform_token_file)
    assert not token.is_api_key
    assert PlatformToken("vak_123", environment.platform_token_file).is_api_key


def test_an_empty_platform_token_file_means_not_logged_in() -> None:
    assert read_platform_token(write_platform_token("\n").platform_token_file) is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_platform_token_others_can_read_is_refused_with_the_fix(mode: int) -> None:
    environment = write_platform_token(SECRET, mode)

    with pytest.raises(TokenFileError) as refused:
        read_platform_token(environment.platform_token_file)

    message = str(refused.value)
    assert f"chmod 600 {environment.platform_token_file}" in message
    assert f"{mode:04o}" in message
    assert SECRET not in message


def test_a_platform_token_the_owner_alone_can_read_is_accepted() -> None:
    environment = write_platform_token(SECRET, 0o400)

    token = read_platform_token(environment.platform_token_file)

    assert token is not None and token.value == SECRET


def test_an_unreadable_platform_token_file_is_refused() -> None:
    environment = VellumEnvironment.resolve()
    environment.platform_token_file.mkdir(parents=True)

    with pytest.raises(TokenFileError, match="cannot be read"):
        read_platform_token(environment.platform_token_file)


def test_the_guardian_token_is_read_from_its_assistant_directory() -> None:
    environment = write_guardian_token(
        "asst-1",
        json.dumps(
            {
                "accessToken": SECRET,
                "accessTokenExpiresAt": "2030-01-01T00:00:00.000Z",
                "refreshToken": "refresh-secret",
            }
        ),
    )

    token = read_guardian_token(environment, "asst-1")

    assert token == GuardianToken(
        SECRET,
        "2030-01-01T00:00:00.000Z",
        environment.config_dir / "assistants/asst-1/guardian-token.json",
    )
    assert read_guardian_token(environment, "asst-2") is None


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        json.dumps({"accessTokenExpiresAt": "2030-01-01T00:00:00Z"}),
        json.dumps({"accessToken": ""}),
        json.dumps({"accessToken": 42}),
    ],
)
def test_a_malformed_guardian_token_is_none(text: str) -> None:
    assert read_guardian_token(write_guardian_token("asst-1", text), "asst-1") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", ", line 1, column 2: Expecting property name enclosed in double quotes"),
        ('{"accessToken": ' + "[" * 100 + "]" * 100 + "}", ": nested more than 64 levels deep"),
    ],
)
def test_a_guardian_token_file_that_does_not_parse_is_an_error_naming_it(
    text: str, problem: str
) -> None:
    environment = write_guardian_token("asst-1", text)

    with pytest.raises(TokenFileError) as refused:
        read_guardian_token(environment, "asst-1")

    path = environment.config_dir / "assistants/asst-1/guardian-token.json"
    assert str(refused.value) == f"{path}{problem}"


def test_an_expiry_that_is_not_text_is_dropped() -> None:
    environment = write_guardian_token(
        "asst-1", json.dumps({"accessToken": SECRET, "accessTokenExpiresAt": 1893456000000})
    )

    token = read_guardian_token(environment, "asst-1")

    assert token is not None and (token.access_token, token.expires_at) == (SECRET, None)


@pytest.mark.parametrize("assistant_id", ["", ".", "..", "../asst-1", "a/b"])
def test_an_assistant_id_cannot_point_outside_the_assistants_directory(
    assistant_id: str,
) -> None:
    environment = write_guardian_token("asst-1", json.dumps({"accessToken": SECRET}))

    assert read_guardian_token(environment, assistant_id) is None


def test_tokens_never_show_in_str_or_repr() -> None:
    environment = write_platform_token(SECRET)
    write_guardian_token("asst-1", json.dumps({"accessToken": SECRET}))
    platform_token = read_platform_token(environment.platform_token_file)
    guardian_token = read_guardian_token(environment, "asst-1")

    for token in (platform_token, guardian_token):
        assert token is not None
        for shown in (str(token), repr(token), f"{token}", str([token]), str({"t": token})):
            assert SECRET not in shown
            assert "***" in shown
