"""Tokens of both daemons: from a file or the environment, never weak beyond loopback.

Real ``chaosagenkit serve`` and ``chaosagenkit proxy`` processes. No test
binds beyond loopback: the refusals happen before anything is bound, and an
accepted non-loopback token is checked on ``check_bind`` itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaosagenkit import supervisor
from chaosagenkit.api import check_bind
from chaosagenkit.control_client import ControlClient
from chaosagenkit.credentials import MIN_TOKEN_LENGTH, TOKEN_ENV
from chaosagenkit.exceptions import ConfigurationError, ControlAPIError
from tests.integration.test_service_support import REPO

pytestmark = [pytest.mark.chaos]

COMMANDS = ["serve", "proxy"]
TOKEN = "a-token-read-from-a-file"


def bind_option(command: str, host: str) -> list[str]:
    return ["--listen", f"{host}:0"] if command == "proxy" else ["--control", f"{host}:0"]


def run_cli(command: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    return subprocess.run(
        [sys.executable, "-m", "chaosagenkit", command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**environ, **(env or {})},
    )


def control_url(child: supervisor.Child) -> tuple[str, str]:
    if child.command == "serve":
        return child.ready["control"], "/health"
    return child.ready["api"], "/version"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_token_file_protects_the_api_and_stays_out_of_ps(command, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    child = supervisor.start(
        command, [*bind_option(command, "127.0.0.1"), "--token-file", str(token_file)], label="test child"
    )
    try:
        url, path = control_url(child)
        assert ControlClient(url, TOKEN).get(path)
        with pytest.raises(ControlAPIError, match="401"):
            ControlClient(url).get(path)
        assert TOKEN.encode() not in Path(f"/proc/{child.pid}/cmdline").read_bytes()
    finally:
        child.stop()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_token_file_wins_over_an_inherited_environment_variable(command, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv(TOKEN_ENV, "an-inherited-token-of-the-shell")  # supervisor.start drops it anyway
    child = supervisor.start(
        command, [*bind_option(command, "127.0.0.1"), "--token-file", str(token_file)], label="test child"
    )
    try:
        url, path = control_url(child)
        assert ControlClient(url, TOKEN).get(path)
    finally:
        child.stop()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "case,args,env,words",
    [
        (
            "short",
            ["--token", "abcde"],
            {},
            f"needs a token of at least {MIN_TOKEN_LENGTH} characters, got one of 5",
        ),
        ("short env", [], {TOKEN_ENV: "a" * 15}, "got one of 15"),
        ("none", [], {}, f"needs a token (--token-file, ${TOKEN_ENV} or --token)"),
        ("blank", ["--token", "   "], {}, "'--token' must be printable ASCII without spaces"),
        (
            "spaces env",
            [],
            {TOKEN_ENV: "a token with spaces in it"},
            f"'${TOKEN_ENV}' must be printable ASCII",
        ),
    ],
)
def test_a_weak_token_is_refused_beyond_loopback_in_one_line(command, case, args, env, words):
    done = run_cli(command, *bind_option(command, "0.0.0.0"), *args, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"chaosagenkit {command}: error: "), lines
    assert words in lines[0]
    assert "abcde" not in lines[0] and "spaces in it" not in lines[0], "an error never shows the token"


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_token_files_are_one_line_errors(command, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    good = tmp_path / "good"
    good.write_text(TOKEN)
    cases = [
        (["--token-file", str(empty)], "'--token-file' is empty"),
        (["--token-file", str(tmp_path / "missing")], "'--token-file' cannot be read: No such file"),
        (["--token-file", str(good), "--token", TOKEN], "cannot be combined with --token"),
    ]
    for args, words in cases:
        done = run_cli(command, *bind_option(command, "127.0.0.1"), *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], (args, done.stderr)


def test_a_long_enough_token_is_accepted_beyond_loopback_and_any_on_loopback():
    check_bind("0.0.0.0", "x" * MIN_TOKEN_LENGTH, "--listen")
    check_bind("127.0.0.1", "short", "--listen")
    check_bind("::1", None, "--listen")
    with pytest.raises(ConfigurationError, match="got one of 15"):
        check_bind("10.0.0.5", "x" * (MIN_TOKEN_LENGTH - 1), "--listen")


def test_activities_reach_a_host_elsewhere_with_the_token_of_the_environment(monkeypatch):
    # Chaos Toolkit drops a --var the experiment does not declare; the environment gets through.
    from chaoslib.exceptions import ActivityFailed

    from chaosagenkit.sandbox import SANDBOX
    from chaosagenkit.service import probes

    SANDBOX.reset()
    child = supervisor.start("serve", [], label="host elsewhere", token=TOKEN)
    try:
        url = child.ready["control"]
        monkeypatch.delenv(TOKEN_ENV, raising=False)
        with pytest.raises(ActivityFailed, match="chaosagenkit_server_token' is missing or wrong"):
            probes.server_is_up(url)
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        assert probes.server_is_up(url) is True
        with pytest.raises(ActivityFailed, match="401"):  # the configuration's token comes first
            probes.server_is_up(url, configuration={"chaosagenkit_server_token": "a-wrong-token-of-the-run"})
    finally:
        child.stop()
        SANDBOX.reset()
