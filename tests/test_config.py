"""config.toml: defaults, every setting, and errors that name the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.config import DEFAULT_TMUX_REFRESH_SECONDS, Config, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_missing_file_means_the_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml")

    assert config == Config()
    assert config.tmux_refresh_seconds == DEFAULT_TMUX_REFRESH_SECONDS


def test_every_setting_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[tmux]
socket = "work"
refresh_seconds = 1

[[docker.engines]]
name = "build-box"
host = "ssh://me@build-box"

[[docker.engines]]
name = "laptop"
context = "colima"

[keys]
refresh = "ctrl+r,f5"

[backups]
keep = 5
""",
    )

    config = load_config(path)
    assert config.backups_keep == 5

    assert config.tmux_socket == "work"
    assert config.tmux_refresh_seconds == 1.0
    assert [(e.name, e.host, e.context) for e in config.docker_engines] == [
        ("build-box", "ssh://me@build-box", None),
        ("laptop", None, "colima"),
    ]
    assert config.keys == {"refresh": "ctrl+r,f5"}


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[tmux]\nsocket = 3\n", "tmux.socket", "must be a string, not a number"),
        ('[tmux]\nsocket = " "\n', "tmux.socket", "must not be empty"),
        ("[tmux]\nrefresh_seconds = true\n", "tmux.refresh_seconds", "not a boolean"),
        ("[tmux]\nrefresh_seconds = 0\n", "tmux.refresh_seconds", "between 0.2 and 3600"),
        (
            "[tmux]\ncolour = 1\n",
            "tmux.colour",
            "unknown key (known here: refresh_seconds, socket)",
        ),
        ("tmux = 1\n", "tmux", "must be a table, not a number"),
        ("[plugins]\n", "plugins", "unknown key"),
        ("[docker]\nengines = 1\n", "docker.engines", "must be an array of tables"),
        ('[[docker.engines]]\nhost = "unix:///s"\n', "docker.engines[0].name", "required"),
        ('[[docker.engines]]\nname = "a b"\nhost = "unix:///s"\n', "docker.engines[0].name", ""),
        ('[[docker.engines]]\nname = "a"\n', "docker.engines[0]", "exactly one of 'host'"),
        (
            '[[docker.engines]]\nname = "a"\nhost = "x:///s"\ncontext = "c"\n',
            "docker.engines[0]",
            "exactly one",
        ),
        ('[[docker.engines]]\nname = "a"\nhost = "box"\n', "docker.engines[0].host", "not a URL"),
        (
            '[[docker.engines]]\nname = "a"\nhost = "unix:///s"\n'
            '[[docker.engines]]\nname = "a"\ncontext = "c"\n',
            "docker.engines[1].name",
            "defined twice",
        ),
        ("[keys]\nquit = 1\n", "keys.quit", "must be a key"),
        ("[terminal]\nscrollback = -1\n", "terminal.scrollback", "between 0 and 1000000"),
        ('[terminal]\nscrollback = "lots"\n', "terminal.scrollback", "whole number, not a string"),
        ('[terminal]\nshell = ""\n', "terminal.shell", "must not be empty"),
        ("[health]\nconcurrency = 0\n", "health.concurrency", "between 1 and 512, not 0"),
        ('[notifications]\nbell = "yes"\n', "notifications.bell", "true or false, not a string"),
        ("[notifications]\nsound = true\n", "notifications.sound", "unknown key"),
        ("[backups]\nkeep = 0\n", "backups.keep", "between 1 and 100000, not 0"),
        ('[backups]\nkeep = "all"\n', "backups.keep", "whole number, not a string"),
        ("[backups]\nkeep_days = 3\n", "backups.keep_days", "unknown key (known here: keep)"),
    ],
)
def test_errors_name_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_a_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[tmux]\nsocket = "a"\nrefresh_seconds = = 2\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.key is None
    assert "line 3" in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_the_file_is_never_rewritten(tmp_path: Path) -> None:
    path = write(tmp_path, "[tmux]\nsocket = 3  # wrong\n")
    before = path.read_bytes(), path.stat().st_mtime_ns

    with pytest.raises(ConfigError):
        load_config(path)

    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


KEYS = st.sampled_from(
    [
        "tmux",
        "docker",
        "keys",
        "socket",
        "refresh_seconds",
        "engines",
        "name",
        "host",
        "context",
        "quit",
        "other",
    ]
)
SCALARS = st.text(max_size=12) | st.integers(-5, 5000) | st.floats(allow_nan=False) | st.booleans()
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


def toml_value(value: object) -> str:
    """Inline TOML for a JSON-like value (the standard library has no TOML writer)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if not isinstance(value, float) or value == value else "nan"
    if isinstance(value, str):
        return (
            '"' + "".join(f"\\u{ord(c):04x}" if c < " " or c in '"\\' else c for c in value) + '"'
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=4) | st.text(max_size=120))
def test_any_document_gives_a_config_or_a_config_error(document: dict[str, object] | str) -> None:
    """Well-formed TOML of any shape, and arbitrary text, never escape as another exception."""
    import tempfile

    if isinstance(document, dict):
        text = "".join(f"{key} = {toml_value(value)}\n" for key, value in document.items())
    else:
        text = document
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            assert isinstance(load_config(path), Config)
        except ConfigError as error:
            assert str(error).startswith(str(path))


def test_terminal_settings_are_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[terminal]\nscrollback = 500\nshell = "zsh -l"\n'))
    assert (config.terminal_scrollback, config.terminal_shell) == (500, "zsh -l")
    assert Config().terminal_scrollback == 10_000


def test_notifications_are_on_unless_turned_off(tmp_path: Path) -> None:
    assert (Config().notify_bell, Config().notify_desktop) == (True, True)
    config = load_config(write(tmp_path, "[notifications]\ndesktop = false\n"))
    assert (config.notify_bell, config.notify_desktop) == (True, False)


def test_platform_and_runtimes_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[platform]
url = "https://platform.example/"
token_file = "~/tokens/platform"
refresh_seconds = 30

[[runtimes]]
name = "lab"
url = "http://127.0.0.1:7821"
token_file = "/etc/roost/lab-token"
""",
    )

    config = load_config(path)

    assert config.platform_url == "https://platform.example"
    assert config.platform_token_file == Path("~/tokens/platform").expanduser()
    assert config.platform_refresh_seconds == 30.0
    assert [(r.name, r.url, r.token_file) for r in config.runtimes] == [
        ("lab", "http://127.0.0.1:7821", Path("/etc/roost/lab-token"))
    ]


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[platform]\nurl = "ftp://x"\n', "platform.url", "not an http:// or https:// URL"),
        ('[platform]\ntoken_file = ""\n', "platform.token_file", "must not be empty"),
        ("[platform]\nkey = 1\n", "platform.key", "unknown key"),
        ("runtimes = 1\n", "runtimes", "must be an array of tables"),
        ('[[runtimes]]\nname = "a"\n', "runtimes[0].url", "required"),
        ('[[runtimes]]\nurl = "http://x"\n', "runtimes[0].name", "required"),
        (
            '[[runtimes]]\nname = "a"\nurl = "http://x"\n[[runtimes]]\nname = "a"\nurl = "http://y"\n',
            "runtimes[1].name",
            "defined twice",
        ),
        ('[docker]\nrefresh_seconds = "5"\n', "docker.refresh_seconds", "must be a number"),
    ],
)
def test_platform_and_runtime_errors_name_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))

    assert caught.value.key == key
    assert problem in caught.value.problem
