"""Each expectation of the kernel experiments can fail: a weakened run names it unmet (root only).

For every method expectation (a method probe with a tolerance) of
packet_loss_kernel, server_unreachable and network_partition_blackhole
there is a run below, weakened through the experiment's own configuration
as a user would with --var (or the recorded run itself, where agenkit
already fails it), whose journal marks that expectation's tolerance as
not met. Each run also leaves nothing behind: no process, port or namespace.
"""

from __future__ import annotations

import json

import pytest

from chaosagenkit.kernel.system import list_namespaces, unavailable_reason
from chaosagenkit.suite import RunPlan
from tests.experiments.conftest import EXPERIMENTS, assert_nothing_left_behind, run_plan

REASON = unavailable_reason()
pytestmark = [
    pytest.mark.xdist_group("kernel"),  # one at a time beside other kernel tests (pytest -n --dist loadgroup)
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
    pytest.mark.chaos,
    pytest.mark.slow,
]

KERNEL_EXPERIMENTS = ("packet_loss_kernel", "server_unreachable", "network_partition_blackhole")
BROKEN_TARGET = {"target_agent": "tests.experiments.weak_targets:echo_then_fail"}

VARIANTS = [
    # experiment, transport, what is weakened, configuration overrides, expectations that must be unmet
    (
        "packet_loss_kernel",
        "tcp",
        "nothing: the recorded run (a 100 ms timeout over tcp under real loss)",
        {},
        ["impatient-never-gets-another-requests-answer"],
    ),
    (
        "packet_loss_kernel",
        "tcp",
        "the patient caller's timeout below TCP's minimum RTO",
        {"client_timeout_ms": 100},
        ["every-request-eventually-answered", "no-answer-belongs-to-another-request-under-loss"],
    ),
    (
        "packet_loss_kernel",
        "http",
        "a loss that expires (in the kernel) before any packet meets it",
        {"loss_duration_s": 0.001},
        [
            "performance-degraded",
            "impatient-caller-timed-out",
            "fault-dropped-packets",
            "callers-kernel-retransmitted",
            "target-kernel-retransmitted",
        ],
    ),
    (
        "packet_loss_kernel",
        "http",
        "a target broken after the steady state",
        BROKEN_TARGET,
        ["impatient-caller-connects-before-the-loss", "impatient-failures-are-timeouts"],
    ),
    (
        "packet_loss_kernel",
        "http",
        "an impatient timeout longer than the bound allows",
        {"impatient_timeout_ms": 1000},
        ["impatient-timeouts-bounded"],
    ),
    (
        "server_unreachable",
        "tcp",
        "nothing: the recorded run (agenkit's connect is not bounded by its timeout)",
        {},
        ["fails-with-a-timeout-error", "within-the-configured-timeout"],
    ),
    (
        "server_unreachable",
        "http",
        "an outage that expires before the caller connects",
        {"unreachable_duration_s": 0.001},
        ["kernel-retried-the-syn", "fault-dropped-syns"],
    ),
    (
        "server_unreachable",
        "http",
        "a target broken after the steady state",
        BROKEN_TARGET,
        ["late-caller-reaches-the-server"],
    ),
    (
        "network_partition_blackhole",
        "tcp",
        "nothing: the recorded run (late answers after healing over tcp)",
        {},
        [
            "caller-recovers",
            "requests-after-the-partition",
            "no-answer-belongs-to-another-request-after-healing",
        ],
    ),
    (
        "network_partition_blackhole",
        "http",
        "a partition that expires before the first request",
        {"partition_duration_s": 0.001},
        ["requests-during-the-partition", "kernel-kept-retransmitting", "fault-dropped-packets"],
    ),
    (
        "network_partition_blackhole",
        "http",
        "a partition that expires at once, in front of a broken target",
        {**BROKEN_TARGET, "partition_duration_s": 0.001},
        ["failures-are-timeouts"],
    ),
    (
        "network_partition_blackhole",
        "http",
        "a caller timeout longer than the bound allows",
        {"client_timeout_ms": 2000},
        ["noticed-within-the-configured-timeout"],
    ),
]


def expectations(name: str) -> set[str]:
    experiment = json.loads((EXPERIMENTS / f"{name}.json").read_text())
    return {a["name"] for a in experiment["method"] if a["type"] == "probe" and "tolerance" in a}


def test_every_expectation_has_a_variant_that_fails_it():
    for name in KERNEL_EXPERIMENTS:
        covered = {e for experiment, _, _, _, unmet in VARIANTS if experiment == name for e in unmet}
        assert covered == expectations(name), name


@pytest.mark.parametrize(
    "name,transport,weakened,overrides,unmet",
    VARIANTS,
    ids=[f"{v[0]}-{v[1]}-{i}" for i, v in enumerate(VARIANTS)],
)
def test_weakened_run_fails_the_named_expectations(name, transport, weakened, overrides, unmet, tmp_path):
    namespaces_before = set(list_namespaces())
    result, journal = run_plan(RunPlan(EXPERIMENTS / f"{name}.json", transport), tmp_path, **overrides)
    assert result.verdict == "deviates", (
        f"{name} [{transport}] with {weakened}: {result.verdict} {result.detail}"
    )
    met = {run["activity"]["name"]: run.get("tolerance_met") for run in journal["run"]}
    for expectation in unmet:
        assert met.get(expectation) is False, f"{name} [{transport}] with {weakened}: {expectation} was met"
    assert_nothing_left_behind(journal)
    assert set(list_namespaces()) <= namespaces_before
