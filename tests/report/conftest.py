"""Fixtures of the report tests: real journals (built once) and headless Chromium."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.report import journals as builders

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KINDS = (
    "held",
    "deviated_after",
    "deviated_expectation",
    "baseline_not_met",
    "failed",
    "aborted",
    "interrupted",
    "interrupted_by_control",
    "plain",
)


@pytest.fixture(scope="session")
def _built_journals() -> dict[str, dict[str, Any]]:
    return {kind: getattr(builders, kind)() for kind in KINDS}


@pytest.fixture
def journal(_built_journals) -> Callable[[str], dict[str, Any]]:
    """``journal("deviated_after")``: a fresh copy of a real journal of that kind."""
    return lambda kind: copy.deepcopy(_built_journals[kind])


@pytest.fixture
def write_journal(tmp_path, journal) -> Callable[..., Path]:
    """Write a journal of ``kind`` (optionally with client traffic) into tmp_path."""
    import json

    def write(kind: str, name: str | None = None, traffic: bool = False, **traffic_args: Any) -> Path:
        data = journal(kind)
        if traffic:
            builders.add_traffic(data, **traffic_args)
        path = tmp_path / "journals" / f"{name or kind}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (scripts/install-system-packages installs it as root); else skip."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed: run scripts/install-system-packages as root")


@pytest.fixture
def screenshot(chromium, tmp_path) -> Callable[[Path, int, int], Path]:
    """Render a local file in headless Chromium and return the PNG screenshot."""

    def take(page: Path, width: int = 1280, height: int = 2000) -> Path:
        png = tmp_path / f"{page.stem}.png"
        argv = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={png}",
            f"--window-size={width},{height}", page.resolve().as_uri(),
        ]  # fmt: skip
        # its own session: whatever Chromium leaves behind is killed with the group
        browser = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            _, err = browser.communicate(timeout=180)
        finally:
            try:
                os.killpg(browser.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            browser.wait()
        assert png.exists(), f"chromium wrote no screenshot: {err.decode(errors='replace')[-500:]}"
        return png

    return take
