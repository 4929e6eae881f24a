"""Reading files roost does not own: bounded, never blocking, every failure a FileError."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.files import MAX_DEPTH, FileError, read_bytes, read_json, read_toml

LIMIT = 4096


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def test_a_regular_file_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"x" * LIMIT)

    assert read_bytes(path, LIMIT) == b"x" * LIMIT


def test_one_byte_over_the_limit_is_refused_without_reading_on(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"x" * (LIMIT + 1))

    with pytest.raises(FileError) as refused:
        read_bytes(path, LIMIT)

    assert str(refused.value) == f"{path}: is larger than 4 KiB, too large to be what roost expects"


def test_a_missing_file_is_not_an_error_of_ours(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / "absent", LIMIT)


def test_a_symlink_to_dev_zero_is_refused_at_once(tmp_path: Path) -> None:
    link = tmp_path / "zero"
    link.symlink_to("/dev/zero")

    with pytest.raises(FileError, match=r"cannot be read \(a character device, not a regular file"):
        read_bytes(link, LIMIT)


def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(write(tmp_path / "target", "{}"))

    assert read_json(link, LIMIT) == {}


def test_a_fifo_nobody_writes_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_bytes(fifo, LIMIT)
        except BaseException as error:
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():
        with fifo.open("wb"):  # let the stuck reader go before failing
            pass
        pytest.fail("reading a FIFO blocked")
    [error] = outcome
    assert isinstance(error, FileError) and "a FIFO, not a regular file" in str(error)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="a directory, not a regular file"):
        read_bytes(tmp_path, LIMIT)


def test_a_refusal_hook_sees_the_open_files_mode(tmp_path: Path) -> None:
    path = write(tmp_path / "secret", "s")
    path.chmod(0o644)

    with pytest.raises(FileError) as refused:
        read_bytes(path, LIMIT, refuse=lambda p, mode: f"mode {mode & 0o777:o}")

    assert str(refused.value) == f"{path}: mode 644"


@pytest.mark.parametrize(
    ("content", "problem", "line"),
    [
        ("[" * 100_000 + "]" * 100_000, f"nested more than {MAX_DEPTH} levels deep", None),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested more than", None),
        ('{"a": ' + "1" * 5000 + "}", "a number has more than 4300 digits", None),
        ('{\n  "a": 1,\n}', "Expecting property name enclosed in double quotes", 3),
        (b'{"a": "\xff"}', "not UTF-8 text (invalid start byte)", 1),
    ],
)
def test_every_way_json_can_fail_names_the_file(
    tmp_path: Path, content: str | bytes, problem: str, line: int | None
) -> None:
    path = write(tmp_path / "data.json", content)

    with pytest.raises(FileError) as refused:
        read_json(path, 1 << 20)

    assert refused.value.path == path
    assert problem in refused.value.problem
    assert refused.value.line == line
    assert str(refused.value).startswith(f"{path}")


def test_json_nested_as_deep_as_allowed_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "data.json", "[" * MAX_DEPTH + "]" * MAX_DEPTH)

    assert read_json(path, LIMIT) is not None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("a = " + "[" * 100_000 + "]" * 100_000, "invalid TOML: nested too deeply"),
        ("a = " + "{b = " * 100_000 + "1" + "}" * 100_000, "invalid TOML: nested too deeply"),
        ("a" + ".a" * 100_000 + " = 1", f"a key is nested more than {MAX_DEPTH} levels deep"),
        ('"a"' + '."a"' * 100 + " = 1", f"a key is nested more than {MAX_DEPTH} levels deep"),
        ("a = " + "1" * 5000, "a number has more than 4300 digits"),
        ("a = [1,", "invalid TOML: "),
    ],
)
def test_every_way_toml_can_fail_names_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = write(tmp_path / "config.toml", content)

    with pytest.raises(FileError) as refused:
        read_toml(path, 1 << 20)

    assert refused.value.path == path and problem in refused.value.problem


def test_dotted_keys_short_of_the_limit_and_dots_in_strings_are_fine(tmp_path: Path) -> None:
    deep = "a" + ".a" * (MAX_DEPTH - 1)
    path = write(tmp_path / "config.toml", f'{deep} = 1\nurl = "{"x." * 200}"\n')

    assert read_toml(path, LIMIT)["url"] == "x." * 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_any_json_document_reads_back_as_written(tmp_path: Path, value: object) -> None:
    path = write(tmp_path / "data.json", json.dumps(value))

    assert read_json(path, 1 << 20) == value


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=200) | st.text(alphabet='[]{}":,0123456789 \n').map(str.encode))
def test_any_bytes_are_a_value_or_a_file_error_for_both_parsers(
    tmp_path: Path, content: bytes
) -> None:
    path = write(tmp_path / "data", content)
    for read in (read_json, read_toml):
        try:
            read(path, LIMIT)
        except FileError as error:
            assert error.path == path
