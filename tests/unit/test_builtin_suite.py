"""The experiments ship with the package: found installed or in a checkout, copied into a project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chaosagenkit import builtin_suite
from chaosagenkit.builtin_suite import copy_experiments, experiments_dir, init_experiments
from chaosagenkit.suite import experiment_paths, plan_runs

REPO = Path(__file__).resolve().parents[2]


def test_a_checkout_or_editable_install_reads_the_repository_folder():
    assert experiments_dir() == REPO / "experiments"
    assert experiment_paths(()) == [REPO / "experiments"]  # `chaosagenkit run` with no path
    assert len(plan_runs(experiment_paths(()))) >= 48


def test_an_installed_wheel_reads_its_package_data(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "chaosagenkit"
    (package / "experiments").mkdir(parents=True)
    (package / "experiments" / "retry.json").write_text("{}")
    monkeypatch.setattr(builtin_suite, "_PACKAGE", package)
    assert experiments_dir() == package / "experiments"
    (package / "experiments" / "retry.json").unlink()
    with pytest.raises(click.ClickException, match="missing from this installation"):
        experiments_dir()


def test_init_experiments_copies_every_experiment_and_never_overwrites_silently(tmp_path):
    target = tmp_path / "experiments"
    done = CliRunner().invoke(init_experiments, [str(target)])
    assert done.exit_code == 0, done.output
    names = sorted(p.name for p in (REPO / "experiments").glob("*.json"))
    assert sorted(p.name for p in target.iterdir()) == names
    assert (target / "retry.json").read_bytes() == (REPO / "experiments" / "retry.json").read_bytes()
    (target / "retry.json").write_text("mine")
    done = CliRunner().invoke(init_experiments, [str(target)])
    assert done.exit_code == 1 and "nothing copied; use --force" in done.output
    assert (target / "retry.json").read_text() == "mine"
    assert len(copy_experiments(target, force=True)) == len(names)
    assert (target / "retry.json").read_bytes() == (REPO / "experiments" / "retry.json").read_bytes()


def test_the_build_step_puts_the_experiments_into_the_package(tmp_path):
    pytest.importorskip("setuptools", reason="setuptools (the build backend) is in the test extra")
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shipped = sorted(p.name for p in (tmp_path / "chaosagenkit" / "experiments").glob("*.json"))
    assert shipped == sorted(p.name for p in (REPO / "experiments").glob("*.json"))
    assert (tmp_path / "chaosagenkit" / "builtin_suite.py").exists()
    assert (tmp_path / "chaosagenkit" / "py.typed").exists()  # PEP 561: users' checkers read our types


def test_chaos_agent_is_importable_from_the_package_without_slowing_import_chaosagenkit():
    code = (
        "import sys, time\n"
        "t = time.perf_counter(); import chaosagenkit; took = time.perf_counter() - t\n"
        "assert 'agenkit' not in sys.modules and 'chaoslib' not in sys.modules, sorted(sys.modules)\n"
        "from chaosagenkit import ChaosAgent\n"
        "from chaosagenkit.service.chaos_agent import ChaosAgent as Real\n"
        "assert ChaosAgent is Real and 'agenkit' in sys.modules\n"
        "print(took)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
