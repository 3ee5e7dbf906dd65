"""The Chaos Toolkit control that builds an experiment's sandbox and always tears it down.

Declare it once at the top of an experiment::

    "controls": [{
        "name": "chaosagenkit",
        "provider": {
            "type": "python",
            "module": "chaosagenkit.control",
            "arguments": {
                "seed": "${seed}",
                "servers": [{"name": "target", "agent": "chaosagenkit.targets:echo",
                             "transport": "${transport}"}],
                "proxy": {"name": "proxy", "url": "${toxiproxy_url}"},
                "proxies": [{"name": "target_proxy", "upstream": "server:target"}],
                "clients": [{"name": "caller", "proxy": "target_proxy",
                             "middleware": [{"type": "retry", "max_retries": 3}]}],
                "llm_endpoints": [{"name": "model"}],
                "topology": {"hosts": [...], "edges": [...]}
            }
        }
    }]

Lifecycle (a design rule of this module):

- ``configure_control`` (before anything runs) reads string values of the
  configuration as JSON where the experiment declares a number, boolean,
  list or object (plain ``chaos run --var steady_requests=5`` passes the
  string "5"); see ``chaosagenkit.configuration``.
- ``before_experiment_control`` (before the steady-state hypothesis) first
  checks the configuration (each problem one line naming the key; a client
  calling a fixed endpoint that the run's faults would not reach is
  refused), then fixes
  the run's seed, builds the kernel network if one is declared (``network``,
  see ``chaosagenkit.kernel``: servers declared with ``"namespace"`` run in
  it, clients call from its callers' side), starts the declared LLM fault
  endpoints (``chaosagenkit llm-proxy``, see ``chaosagenkit.llm.process``),
  the declared servers (``chaosagenkit serve`` child
  processes) or registers external ones (``control_url``), starts the fault
  proxy or uses an external Toxiproxy-compatible API (``url``), declares the
  proxies, builds the declared topology (``chaosagenkit.topology``: hosts
  leaves first, one proxy per edge), and creates the clients. An external chaos host gets the run's
  derived seed (``POST /seed``, a ``seed`` event on the timeline), as a
  started one does on its command line. If anything fails it tears down what it
  started and stops the run with ``InterruptExecution``: an experiment never
  runs against half a sandbox.
- ``after_method_control`` checks the ``tolerance`` of every method probe
  with chaoslib's own ``within_tolerance`` (Chaos Toolkit records method
  probes but never checks them) and marks each run entry ``tolerance_met``.
  ``${name}`` placeholders anywhere in such a tolerance come from the
  configuration, so counts and bounds can be overridden with ``--var``.
- ``after_experiment_control`` writes the chaosagenkit extension into the
  journal (below), marks the journal ``deviated`` when a method expectation
  was not met, and ``status: failed`` when the verdict is
  ``baseline_not_met`` or ``failed`` (chaoslib records a baseline that was
  not met, or a fault action that raised, as ``completed``, not deviated:
  ``chaos run`` would exit 0); a run that checked nothing stays
  ``completed`` for Chaos Toolkit ("just exploring"), though its verdict is
  ``failed``; then it tears down.
- ``cleanup_control``, which Chaos Toolkit calls whatever happened to the
  run (failed, aborted, interrupted by SIGINT), tears down again. Teardown
  is idempotent: stop traffic, close clients, clear every fault on every
  known server and on every host an action faulted by control URL, remove
  the run's proxies and toxics, clear and stop the LLM endpoints, stop every
  process the run started.

The journal's ``chaosagenkit`` extension (what reports and other tools read):
``version``, ``versions`` (chaosagenkit, agenkit, chaostoolkit-lib, python),
``seed``, ``configuration`` (every value, credentials removed by name),
``overrides`` (the values that differ from the experiment's own),
``agents`` (server name -> ``MODULE:FACTORY``, or ``external <control URL>``),
``answer_checks`` (client name -> answer check), ``tolerances`` (steady-state
probe name -> its tolerance with ``${...}`` resolved), ``timeline``,
``clients`` (request outcomes), ``expectations``, ``expectations_met``, and
the verdict of ``chaosagenkit.verdict``: ``verdict``, ``reason``,
``deviations``.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import threading
from collections.abc import Callable
from typing import Any

from chaoslib.exceptions import InterruptExecution

from chaosagenkit import __version__
from chaosagenkit import configuration as run_configuration
from chaosagenkit import verdict as verdicts
from chaosagenkit.activity import seed_or_none
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.validation import random_seed

# Chaos Toolkit routes only this logger to its console and log file (chaoslib.log).
logger = logging.getLogger("chaostoolkit")

__all__ = [
    "EXTENSION_NAME",
    "after_experiment_control",
    "after_method_control",
    "before_experiment_control",
    "build_sandbox",
    "cleanup_control",
    "configure_control",
    "evaluate_expectations",
    "teardown_sandbox",
]

EXTENSION_NAME = "chaosagenkit"

_teardown_lock = threading.Lock()
_expectations: list[dict[str, Any]] = []
_interruptions: list[str] = []  # why this control stopped the run, for the journal
_problems: list[str] = []  # configuration problems found before the run, one line each
_declared: dict[str, Any] = {}  # the experiment's own configuration and declarations
_run_facts: dict[str, Any] = {}  # agents and answer checks, for the journal


def configure_control(
    configuration: dict[str, Any] | None = None,
    experiment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Start each run from an empty registry; read string values as the experiment declares them."""
    teardown_sandbox()
    SANDBOX.reset()
    _expectations.clear()
    _interruptions.clear()
    _problems.clear()
    _declared.clear()
    _run_facts.clear()
    declared = (experiment or {}).get("configuration")
    _declared["configuration"] = dict(declared) if isinstance(declared, dict) else {}
    _declared["arguments"] = _own_arguments(experiment or {})
    if configuration is not None:
        # the same dict chaoslib substitutes ${...} from, so the right kinds reach every activity
        _problems.extend(run_configuration.coerce_configuration(configuration, _declared["configuration"]))


def before_experiment_control(
    context: dict[str, Any],
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    seed: int | str | None = None,
    servers: list[dict[str, Any]] | None = None,
    proxy: dict[str, Any] | None = None,
    proxies: list[dict[str, Any]] | None = None,
    clients: list[dict[str, Any]] | None = None,
    llm_endpoints: list[dict[str, Any]] | None = None,
    network: dict[str, Any] | None = None,
    topology: dict[str, Any] | list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> None:
    """Check the configuration, build the sandbox; stop the run (one line) if either fails."""
    declared = _declared.get("arguments") or {}
    problems = list(_problems) + run_configuration.check_clients(
        servers or [], clients or [], declared.get("servers"), declared.get("clients")
    )
    if problems:
        for problem in problems:
            logger.error(f"chaosagenkit.control: {problem}")
        message = "; ".join(problems)
        _interruptions.append(message)
        raise InterruptExecution(f"chaosagenkit.control: {message}")
    try:
        build_sandbox(
            seed=seed,
            servers=servers or [],
            proxy=proxy,
            proxies=proxies or [],
            clients=clients or [],
            configuration=configuration or {},
            llm_endpoints=llm_endpoints or [],
            network=network,
            topology=topology,
        )
    except Exception as e:
        teardown_sandbox()
        message = f"could not build the sandbox: {e}"
        _interruptions.append(message)
        logger.error(f"chaosagenkit.control: {message}")
        raise InterruptExecution(f"chaosagenkit.control: {message}") from e


def after_method_control(
    context: dict[str, Any],
    state: list[dict[str, Any]] | None = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Check the tolerance of every method probe that declares one."""
    _expectations.extend(evaluate_expectations(state or [], configuration, secrets))


def after_experiment_control(
    context: dict[str, Any],
    state: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Record the chaosagenkit extension and the verdict in the journal, then tear down."""
    try:
        if state is not None:
            _record_in_journal(state, configuration or SANDBOX.configuration)
    finally:
        teardown_sandbox()


def cleanup_control(**kwargs: Any) -> None:
    """Tear down whatever is left; Chaos Toolkit calls this whatever happened to the run."""
    teardown_sandbox()


def build_sandbox(
    *,
    seed: int | str | None,
    servers: list[dict[str, Any]],
    proxy: dict[str, Any] | None,
    proxies: list[dict[str, Any]],
    clients: list[dict[str, Any]],
    configuration: dict[str, Any],
    llm_endpoints: list[dict[str, Any]] | None = None,
    network: dict[str, Any] | None = None,
    topology: dict[str, Any] | list[dict[str, Any]] | None = None,
) -> None:
    """Start or register everything the experiment declares, in dependency order."""
    SANDBOX.seed = _resolve_seed(seed)
    SANDBOX.configuration = dict(configuration)
    logger.info(f"chaosagenkit: run seed {SANDBOX.seed}")

    if network:  # kernel packet faults: namespaces first, servers are placed in them
        # Imported on use: ~50 ms of imports only this path needs.
        from chaosagenkit.kernel import network as kernel_network

        kernel_network.build_from_spec(network)

    if llm_endpoints:  # before the servers: their env may say {llm:NAME}
        # Imported on use: ~210 ms of imports only this path needs.
        from chaosagenkit.llm import process as llm_process

        for spec in llm_endpoints:
            llm_process.start_or_register(spec)

    _run_facts["agents"] = {}
    if servers:
        # Imported on use: it loads aiohttp; other paths here never need it.
        from chaosagenkit.service import hosts as service_hosts

        for spec in servers:
            ref = service_hosts.start_or_register(spec)
            if ref.process is None:  # a host elsewhere: the run's seed drives its faults too
                _reseed_external(service_hosts, ref, spec)
                _run_facts["agents"][ref.name] = f"external {ref.control_url}"
            else:
                _run_facts["agents"][ref.name] = spec.get("agent") or "chaosagenkit.targets:echo"

    if proxy or proxies:
        # Imported on use: it loads aiohttp and hpack; other paths here never need it.
        from chaosagenkit.network import daemons as network_daemons

        network_daemons.start_or_register_daemon(proxy or {}, configuration)
        for spec in proxies:
            network_daemons.declare_proxy_from_spec(spec)

    if topology:  # after the proxy daemon, before the clients that call into it
        # Imported on use: ~30 ms of imports only this path needs.
        from chaosagenkit.topology import system as topology_system

        topology_system.build(topology, configuration)

    if clients:
        # Imported on use: ~40 ms of imports only this path needs.
        from chaosagenkit.client import registry as client_registry

        for spec in clients:
            client_registry.create_client_from_spec(spec)
    _run_facts["answer_checks"] = {
        spec["name"]: spec.get("answer_check") or "echo"
        for spec in clients
        if isinstance(spec, dict) and isinstance(spec.get("name"), str)
    }


def teardown_sandbox() -> list[str]:
    """Stop traffic, close clients, clear faults, remove proxies, stop processes.

    Idempotent and best-effort: every step runs even when an earlier one
    failed; what failed is logged and returned.
    """
    problems: list[str] = []
    with _teardown_lock:
        steps: list[tuple[str, Callable[[], object]]] = []
        if SANDBOX.clients:
            # Imported on use: ~40 ms of imports only this path needs.
            from chaosagenkit.client import registry as client_registry

            steps.append(("close clients", client_registry.close_all_clients))
        if SANDBOX.servers or SANDBOX.fault_hosts:
            # Imported on use: it loads aiohttp; other paths here never need it.
            from chaosagenkit.service import hosts as service_hosts

            steps.append(("clear server faults", service_hosts.clear_all_faults))
            topology_system = sys.modules.get("chaosagenkit.topology.system")  # loaded only if a run has one
            if topology_system is not None and topology_system.active():
                steps.append(("stop topology hosts", topology_system.teardown))
            steps.append(("stop servers", service_hosts.stop_started_servers))
        if SANDBOX.proxies or SANDBOX.proxy_daemons:
            # Imported on use: it loads aiohttp and hpack; other paths here never need it.
            from chaosagenkit.network import daemons as network_daemons

            steps.append(("remove proxies", network_daemons.teardown))
        if SANDBOX.llm_endpoints:
            # Imported on use: ~210 ms of imports only this path needs.
            from chaosagenkit.llm import process as llm_process

            steps.append(("stop LLM endpoints", llm_process.teardown))
        kernel_network = sys.modules.get("chaosagenkit.kernel.network")  # loaded only if a run used one
        if kernel_network is not None and kernel_network.NETWORKS:
            steps.append(("remove kernel networks", kernel_network.teardown_all))
        for what, step in steps:
            try:
                step()
            except Exception as e:  # keep going: the next step may free more
                problems.append(f"{what}: {e}")
                logger.error(f"chaosagenkit teardown could not {what}: {e}")
    return problems


def evaluate_expectations(
    runs: list[dict[str, Any]],
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Check each method probe's ``tolerance``; mark its run entry ``tolerance_met``."""
    from chaoslib import substitute
    from chaoslib.hypothesis import within_tolerance

    results = []
    for run in runs:
        activity = run.get("activity") or {}
        if activity.get("type") != "probe" or "tolerance" not in activity:
            continue
        # Unlike chaoslib's hypothesis (which substitutes string tolerances only),
        # substitute anywhere, so "range": "${expected_range}" comes from configuration.
        tolerance = substitute(activity["tolerance"], configuration or {}, secrets or {})
        if run.get("status") != "succeeded":
            met = False
        else:
            try:
                met = bool(
                    within_tolerance(
                        tolerance, run.get("output"), configuration=configuration, secrets=secrets
                    )
                )
            except Exception as e:  # a tolerance that cannot be checked is not met
                logger.error(f"chaosagenkit: cannot check tolerance of {activity.get('name')}: {e}")
                met = False
        run["tolerance_met"] = met
        results.append(
            {
                "activity": activity.get("name"),
                "output": run.get("output"),
                "tolerance": tolerance,
                "status": run.get("status"),
                "met": met,
            }
        )
        if not met:
            logger.warning(
                f"chaosagenkit: expectation '{activity.get('name')}' not met: "
                f"got {run.get('output')!r}, tolerance {tolerance!r}"
            )
    return results


def _record_in_journal(journal: dict[str, Any], configuration: dict[str, Any]) -> None:
    clients: dict[str, Any] = {}
    if SANDBOX.clients:
        # Imported on use: ~40 ms of imports only this path needs.
        from chaosagenkit.client import registry as client_registry

        try:
            clients = client_registry.export_outcomes()
        except Exception as e:
            logger.error(f"chaosagenkit: could not export client outcomes: {e}")
    unmet = [e for e in _expectations if not e["met"]]
    declared = _declared.get("configuration") or {}
    extension = {
        "name": EXTENSION_NAME,
        "version": __version__,
        "versions": _versions(),
        "seed": SANDBOX.seed,
        "configuration": run_configuration.public(dict(SANDBOX.configuration)),
        "overrides": run_configuration.overrides(dict(SANDBOX.configuration), declared),
        "agents": dict(_run_facts.get("agents") or {}),
        "answer_checks": dict(_run_facts.get("answer_checks") or {}),
        "tolerances": _steady_state_tolerances(journal, configuration),
        "timeline": SANDBOX.timeline(),
        "clients": clients,
        "expectations": list(_expectations),
        "expectations_met": not unmet,
    }
    topology_system = sys.modules.get("chaosagenkit.topology.system")
    if topology_system is not None and topology_system.active():
        try:  # per host, edge and tier, read from the hosts before teardown
            extension["topology"] = topology_system.journal_section()
        except Exception as e:
            logger.error(f"chaosagenkit: could not record the topology: {e}")
    if _interruptions and "interruption" not in journal:
        # chaoslib keeps no reason for an interruption; chaostoolkit's convention:
        journal["interruption"] = {"kind": "control", "name": EXTENSION_NAME, "reason": _interruptions[0]}
    journal.setdefault("extensions", [])
    journal["extensions"] = [e for e in journal["extensions"] if e.get("name") != EXTENSION_NAME] + [
        extension
    ]
    if SANDBOX.not_injected:
        extension["not_injected"] = list(SANDBOX.not_injected)
    if SANDBOX.not_injected and journal.get("status") == "completed":
        # a fault that never reached the traffic tested nothing: the run failed, it did not deviate
        journal["status"] = "failed"
        journal["deviated"] = False
        logger.error(
            f"chaosagenkit: a fault could not be injected ({SANDBOX.not_injected[0]}): experiment failed"
        )
    elif unmet and journal.get("status") == "completed":
        journal["deviated"] = True
        names = ", ".join(str(e["activity"]) for e in unmet)
        logger.warning(f"chaosagenkit: method expectations not met ({names}): experiment deviated")
    judgement = verdicts.judge(journal)
    extension.update(judgement.to_json())
    if judgement.verdict in (verdicts.Verdict.BASELINE_NOT_MET, verdicts.Verdict.FAILED) and (
        judgement.reason != verdicts.NOTHING_CHECKED  # Chaos Toolkit's "just exploring" stays completed
    ):
        # chaoslib leaves these "completed" and not deviated: plain `chaos run` would exit 0
        journal["status"] = "failed"
    log = logger.info if judgement.verdict == verdicts.Verdict.HOLDS else logger.warning
    log(f"chaosagenkit verdict: {judgement.verdict.label}: {judgement.reason}")


def _steady_state_tolerances(journal: dict[str, Any], configuration: dict[str, Any]) -> dict[str, Any]:
    """Each steady-state probe's tolerance with ``${...}`` resolved (the journal keeps the declared one)."""
    from chaoslib import substitute

    hypothesis = (journal.get("experiment") or {}).get("steady-state-hypothesis") or {}
    resolved = {}
    for probe in hypothesis.get("probes") or []:
        if isinstance(probe, dict) and "tolerance" in probe and "${" in json.dumps(probe["tolerance"]):
            try:
                resolved[str(probe.get("name"))] = substitute(probe["tolerance"], configuration or {}, {})
            except Exception as e:  # an unresolvable placeholder is shown as declared
                logger.error(f"chaosagenkit: cannot resolve the tolerance of {probe.get('name')}: {e}")
    return run_configuration.public(resolved)


def _versions() -> dict[str, str | None]:
    """What was tested with: chaosagenkit, agenkit, chaostoolkit-lib and Python versions."""
    from importlib import metadata

    found: dict[str, str | None] = {"chaosagenkit": __version__, "python": platform.python_version()}
    for package in ("agenkit", "chaostoolkit-lib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _reseed_external(service_hosts: Any, ref: Any, spec: dict[str, Any]) -> None:
    """Give a chaos host this run did not start the run's derived seed, on the timeline."""
    seed = seed_or_none(spec.get("seed"))
    seed = SANDBOX.component_seed(f"server:{ref.name}") if seed is None else seed
    if seed is None:
        return
    service_hosts.client_for(ref).post("/seed", {"seed": seed})
    SANDBOX.record_event("seed", ref.name, control=ref.control_url, seed=seed)


def _own_arguments(experiment: dict[str, Any]) -> dict[str, Any]:
    """This control's arguments as the experiment declares them (``${...}`` not substituted)."""
    for control in experiment.get("controls") or []:
        provider = control.get("provider") if isinstance(control, dict) else None
        if isinstance(provider, dict) and provider.get("module") == __name__:
            arguments = provider.get("arguments")
            return arguments if isinstance(arguments, dict) else {}
    return {}


def _resolve_seed(seed: int | str | None) -> int:
    value = seed_or_none(seed)
    return random_seed() if value is None else value
