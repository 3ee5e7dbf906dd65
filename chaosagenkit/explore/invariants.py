"""The invariants: small pure functions over a trial's history, with every tolerance in one place.

Like Jepsen's checkers, each takes the recorded ``History`` (and the
``Tolerances``) and returns a ``Verdict``: how many things it checked, the
violations it found (one line of evidence each), or why it could not check
anything. None of them performs I/O or reads a clock.

| invariant | holds when |
|---|---|
| ``answers_belong_to_requests`` | every answer carries its own request's id |
| ``requests_end_by_deadline`` | no call lasts longer than the deadline its stack promises, plus slack |
| ``recovers_after_faults`` | every call sent ``recovery_s`` after the last fault ended is answered correctly |
| ``no_errors_without_faults`` | no call fails whose whole life lies outside every fault (and its grace) |
| ``errors_are_agenkit_types`` | every error a caller sees is one of agenkit's documented types |
| ``open_circuit_fails_fast`` | a call every attempt of which an open circuit rejected fails within ``fail_fast_ms`` |
| ``half_open_admits_limited_trials`` | a half-open breaker admits at most ``success_threshold`` trial calls |
| ``non_transient_errors_not_retried`` | no attempt that failed with a malformed payload is retried |
| ``host_leaks_nothing`` | the host's fds, agent connections and tasks return to where they began |

Derived bounds (pure functions of the callers' declared stack):

- ``caller_deadline_ms``: what the stack promises a call lasts at most:
  a ``timeout`` layer or a breaker's ``timeout_ms`` bounds everything
  inside it, ``retry`` multiplies the bound inside it by its attempts and
  adds its backoff sleeps, a ``rate_limiter`` adds its ``max_wait_ms``,
  and the innermost bound is the RemoteAgent's own ``timeout_ms``
  (agenkit documents it as the request timeout).
- ``recovery_s``: the breaker's recovery timeout + one caller deadline (a
  call sent just before the fault ended may run that long, and the
  breaker counts from its last failure) + ``recovery_slack_s``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.explore.history import BreakerSample, FaultWindow, History, Request

__all__ = [
    "INVARIANTS",
    "TOLERANCES",
    "Invariant",
    "Tolerances",
    "Verdict",
    "caller_deadline_ms",
    "check_all",
    "half_open_limit",
    "recovery_s",
]


@dataclass(frozen=True)
class Tolerances:
    """Every slack the invariants allow, in one place (units in the names)."""

    #: a call may outlive its deadline by this much plus ``deadline_slack_ratio`` of it
    #: (a loaded 2-core machine schedules late; agenkit's own overhead is in here too)
    deadline_slack_ms: float = 100.0
    deadline_slack_ratio: float = 0.10
    #: added to the breaker's recovery timeout and one caller deadline (see recovery_s)
    recovery_slack_s: float = 1.0
    #: an open circuit must reject within this (the plan says < 5 ms; 20 leaves room for a
    #: loaded machine and still catches any backoff sleep of agenkit's default 100 ms)
    fail_fast_ms: float = 20.0
    #: how long the host gets, after the traffic ended and the extra clients closed,
    #: to close what the run left behind (plus the longest service delay of the run)
    leak_settle_s: float = 3.0
    #: errors that cannot be transient: retrying them cannot help
    non_transient_errors: tuple[str, ...] = ("MalformedPayloadError", "InvalidMessageError")
    #: errors agenkit documents outside its own modules: its TimeoutDecorator and
    #: CircuitBreakerDecorator document raising the builtin TimeoutError
    documented_builtin_errors: tuple[str, ...] = ("TimeoutError",)
    #: evidence lines kept per violated invariant
    max_examples: int = 5


TOLERANCES = Tolerances()


@dataclass(frozen=True)
class Verdict:
    """What one invariant found: ``checked`` items, the violations, or why nothing was checked."""

    invariant: str
    checked: int = 0
    violations: tuple[str, ...] = ()
    count: int = 0  # number of violations (``violations`` keeps the first few)
    not_checked: str | None = None
    first_at_s: float | None = None  # when the first violating call ended, s after the traffic began
    #: what went wrong, in short names (the innermost error, "wrong_answer", "tasks", ...): two
    #: violations of one invariant with the same kinds are most likely one defect
    kinds: tuple[str, ...] = ()

    @property
    def holds(self) -> bool:
        return self.count == 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "invariant": self.invariant,
            "violations": self.count,
            "checked": self.checked,
            "examples": list(self.violations),
        }
        if self.not_checked:
            data["not_checked"] = self.not_checked
        if self.first_at_s is not None:
            data["first_at_s"] = self.first_at_s
        if self.kinds:
            data["kinds"] = list(self.kinds)
        return data


@dataclass(frozen=True)
class Invariant:
    name: str
    title: str  # reads as a sentence: "every answer belongs to its request"
    check: Callable[[History, Tolerances], Verdict] = field(compare=False)


# -- derived bounds --------------------------------------------------------------


def caller_deadline_ms(
    stack: tuple[dict[str, Any], ...] | list[dict[str, Any]], remote_timeout_ms: float
) -> float:
    """The longest a call through ``stack`` (outermost first) may last, in ms (module docstring)."""
    bound = float(remote_timeout_ms)
    for layer in reversed(list(stack)):
        kind = layer.get("type")
        if kind == "timeout" or kind == "circuit_breaker":
            bound = min(bound, float(layer.get("timeout_ms", 30_000)))
        elif kind == "retry":
            attempts = int(layer.get("max_retries", 3))
            delay = float(layer.get("initial_delay", 0.1))
            multiplier = float(layer.get("multiplier", 2.0))
            max_delay = float(layer.get("max_delay", 10.0))
            sleeps = 0.0
            for _ in range(attempts - 1):
                sleeps += delay
                delay = min(delay * multiplier, max_delay)
            bound = attempts * bound + sleeps * 1000.0
        elif kind == "rate_limiter":
            wait = layer.get("max_wait_ms")
            bound = float("inf") if wait is None else bound + float(wait)
    return bound


def _breaker(stack: Any) -> dict[str, Any] | None:
    return next((layer for layer in stack if layer.get("type") == "circuit_breaker"), None)


def recovery_s(
    stack: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    remote_timeout_ms: float,
    tolerances: Tolerances = TOLERANCES,
) -> float:
    """Seconds after the last fault ends by which calls must be answered correctly again."""
    breaker = _breaker(stack)
    breaker_s = float(breaker.get("recovery_timeout_ms", 60_000)) / 1000.0 if breaker else 0.0
    deadline_s = caller_deadline_ms(stack, remote_timeout_ms) / 1000.0
    return round(breaker_s + deadline_s + tolerances.recovery_slack_s, 3)


def half_open_limit(stack: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> int | None:
    """Trial calls a half-open breaker may admit: its ``success_threshold`` (None without a breaker)."""
    breaker = _breaker(stack)
    return None if breaker is None else int(breaker.get("success_threshold", 2))


# -- helpers ------------------------------------------------------------------------


def _verdict(
    name: str,
    history: History,
    checked: int,
    found: Sequence[tuple[float | None, str]],
    tolerances: Tolerances,
    kinds: set[str] | None = None,
) -> Verdict:
    """``found``: (when the violating call ended, epoch s, or None; one line of evidence)."""
    times = [t for t, _ in found if t is not None]
    first = round(min(times) - history.started, 3) if times else None
    lines = tuple(text for _, text in found[: tolerances.max_examples])
    return Verdict(
        name, checked, lines, len(found), first_at_s=first, kinds=tuple(sorted(kinds or ())) if found else ()
    )


def _innermost(request: Request) -> str:
    """What went wrong with a call, in one name: its innermost error, or ``wrong_answer``."""
    if request.error is None:
        return "wrong_answer" if request.wrong else "ok"
    return request.chain[-1] if request.chain else request.error


def _causes(requests: list[Request]) -> set[str]:
    """What went wrong with ``requests``: the innermost error of each call and of each failed attempt.

    An open circuit is a consequence, not a cause: ``CircuitBreakerError`` counts only
    when nothing else went wrong.
    """
    names = {_innermost(r) for r in requests}
    names |= {a.errors[-1] for r in requests for a in r.attempts if a.errors}
    names.discard("ok")
    return names - {"CircuitBreakerError"} if len(names) > 1 else names


def _at(history: History, t: float) -> str:
    return f"+{t - history.started:.2f}s"


def _describe(history: History, request: Request) -> str:
    return f"{request.id} (sent {_at(history, request.sent)}, {request.latency_ms:.0f} ms)"


def _error_text(request: Request) -> str:
    """The error a caller saw with its causes, and its attempts' when they differ.

    ``MaxRetriesExceededError <- CircuitBreakerError (attempts: BrokenPipeError, CircuitBreakerError, ...)``
    """
    text = " <- ".join(request.chain) if request.chain else str(request.error)
    attempts = [a.errors[-1] for a in request.attempts if a.errors]
    if attempts and set(attempts) != {request.chain[-1] if request.chain else request.error}:
        text += f" (attempts: {', '.join(attempts)})"
    return text


def _ended(window: FaultWindow, history: History) -> float:
    return history.ended if window.end is None else window.end


# -- the invariants -------------------------------------------------------------------


def answers_belong_to_requests(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "answers_belong_to_requests"
    if not history.answers_checked:
        return Verdict(name, not_checked="answers are not checked (answer_check 'none')")
    answered = [r for r in history.requests if r.error is None]
    found = [
        (r.end, f"{_describe(history, r)} got the answer to {r.answer_id or 'an unknown request'}")
        for r in answered
        if r.wrong
    ]
    return _verdict(name, history, len(answered), found, tolerances, {"wrong_answer"})


def requests_end_by_deadline(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "requests_end_by_deadline"
    deadline = caller_deadline_ms(history.stack, history.remote_timeout_ms)
    limit = deadline * (1 + tolerances.deadline_slack_ratio) + tolerances.deadline_slack_ms
    found = [
        (
            r.sent + limit / 1000.0,
            f"{_describe(history, r)} outlived its {deadline:.0f} ms deadline (limit {limit:.0f} ms)"
            + (f", then {r.error}" if r.error else ""),
        )
        for r in history.requests
        if r.latency_ms > limit
    ]
    late = {f"late:{_innermost(r)}" for r in history.requests if r.latency_ms > limit}
    return _verdict(name, history, len(history.requests), found, tolerances, late)


def recovers_after_faults(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "recovers_after_faults"
    if not history.faults:
        return Verdict(name, not_checked="no fault was injected")
    if any(w.end is None for w in history.faults):
        return Verdict(name, not_checked="a fault was still active when the traffic ended")
    last_end = max(_ended(w, history) for w in history.faults)
    due = last_end + recovery_s(history.stack, history.remote_timeout_ms, tolerances)
    after = [r for r in history.requests if r.sent >= due]
    if not after:
        return Verdict(name, not_checked=f"no call was sent after the recovery time ({_at(history, due)})")
    found = [
        (
            r.end,
            f"{_describe(history, r)}, {r.sent - last_end:.2f}s after the last fault ended: "
            + (_error_text(r) if r.error else f"the answer to {r.answer_id}"),
        )
        for r in after
        if not r.ok
    ]
    failing = [r for r in after if not r.ok]
    return _verdict(name, history, len(after), found, tolerances, _causes(failing))


def no_errors_without_faults(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "no_errors_without_faults"
    grace = recovery_s(history.stack, history.remote_timeout_ms, tolerances)
    windows = [(w.start, _ended(w, history) + grace) for w in history.faults]
    # calls sent after the last fault belong to recovers_after_faults
    last_start = max((w.start for w in history.faults), default=float("inf"))

    def quiet(r: Request) -> bool:
        return r.sent < last_start and all(r.end < start or r.sent > end for start, end in windows)

    checked = [r for r in history.requests if quiet(r)]
    if not checked:
        return Verdict(name, not_checked="no call ran while no fault was active")
    found = [
        (r.end, f"{_describe(history, r)} failed with {_error_text(r)} while no fault was active")
        for r in checked
        if r.error is not None
    ]
    kinds = _causes([r for r in checked if r.error is not None])
    return _verdict(name, history, len(checked), found, tolerances, kinds)


def errors_are_agenkit_types(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "errors_are_agenkit_types"
    failed = [r for r in history.requests if r.error is not None]
    if not failed:
        return Verdict(name, not_checked="no call failed")

    def documented(r: Request) -> bool:
        module = r.error_module or ""
        return (
            module == "agenkit"
            or module.startswith("agenkit.")
            or (module == "builtins" and r.error in tolerances.documented_builtin_errors)
        )

    found = [
        (
            r.end,
            f"{_describe(history, r)} raised {r.error_module}.{r.error}: {r.message[:100]}"
            + (f" (cause: {' <- '.join(r.chain[1:])})" if len(r.chain) > 1 else ""),
        )
        for r in failed
        if not documented(r)
    ]
    kinds = {f"{r.error_module}.{r.error}" for r in failed if not documented(r)}
    return _verdict(name, history, len(failed), found, tolerances, kinds)


def open_circuit_fails_fast(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "open_circuit_fails_fast"

    def rejected_throughout(r: Request) -> bool:
        if r.error is None:
            return False
        if r.attempts:
            return all(a.errors[:1] == ("CircuitBreakerError",) for a in r.attempts)
        return r.chain[:1] == ("CircuitBreakerError",)

    rejected = [r for r in history.requests if rejected_throughout(r)]
    if not rejected:
        return Verdict(name, not_checked="no call met an open circuit")
    found = [
        (
            r.end,
            f"{_describe(history, r)}: every one of its {max(1, len(r.attempts))} attempt(s) was rejected "
            f"by the open circuit, yet it took {r.latency_ms:.0f} ms (limit {tolerances.fail_fast_ms:g} ms)",
        )
        for r in rejected
        if r.latency_ms > tolerances.fail_fast_ms
    ]
    return _verdict(name, history, len(rejected), found, tolerances, {"slow_rejection"})


def half_open_admits_limited_trials(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    """Count, per half-open episode, a LOWER bound of the calls the breaker admitted.

    Between two consecutive samples of one breaker, admissions are counted as
    half-open trials only when that is certain: both samples half-open with no
    transition between them, or an open sample followed by a half-open one
    with exactly one open->half_open transition between them (an open breaker
    admits nothing except through that transition). Ambiguous intervals
    count nothing, so a violation is never a sampling artefact.
    """
    name = "half_open_admits_limited_trials"
    limit = half_open_limit(history.stack)
    if limit is None:
        return Verdict(name, not_checked="the callers have no circuit breaker")
    by_client: dict[str, list[BreakerSample]] = {}
    for sample in sorted(history.breakers, key=lambda s: s.t):
        by_client.setdefault(sample.client, []).append(sample)
    episodes: list[list[Any]] = []  # [client, start, trials admitted]
    for samples in by_client.values():
        episode: list[Any] | None = None
        for a, b in itertools.pairwise(samples):
            changed = _transitions(a, b)
            if b.state == "half_open" and a.state == "open" and changed == {"open->half_open": 1}:
                episode = [b.client, b.t, b.admitted - a.admitted]
                episodes.append(episode)
            elif b.state == "half_open" and a.state == "half_open" and not changed and episode is not None:
                episode[2] += b.admitted - a.admitted
            else:
                episode = None
    if not episodes:
        return Verdict(name, not_checked="no breaker was seen half-open")
    found = [
        (
            start,
            f"{client}: its breaker admitted {trials} trial calls in one half-open episode "
            f"(from {_at(history, start)}); success_threshold is {limit}",
        )
        for client, start, trials in episodes
        if trials > limit
    ]
    return _verdict(name, history, len(episodes), found, tolerances, {"extra_trials"})


def _transitions(a: BreakerSample, b: BreakerSample) -> dict[str, int]:
    before = dict(a.changes)
    return {k: v - before.get(k, 0) for k, v in b.changes if v != before.get(k, 0)}


def non_transient_errors_not_retried(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "non_transient_errors_not_retried"
    if not any(layer.get("type") == "retry" for layer in history.stack):
        return Verdict(name, not_checked="the callers have no retry middleware")
    checked = 0
    found: list[tuple[float | None, str]] = []
    kinds: set[str] = set()
    for r in history.requests:
        for n, attempt in enumerate(r.attempts, 1):
            hit = [e for e in attempt.errors if e in tolerances.non_transient_errors]
            if not hit:
                continue
            checked += 1
            if attempt.retried:
                kinds.add(hit[0])
                found.append(
                    (r.end, f"{_describe(history, r)}: attempt {n} failed with {hit[0]} and was retried")
                )
    if not checked:
        return Verdict(name, not_checked="no attempt failed with a non-transient error")
    return _verdict(name, history, checked, found, tolerances, kinds)


def host_leaks_nothing(history: History, tolerances: Tolerances = TOLERANCES) -> Verdict:
    name = "host_leaks_nothing"
    before, after = history.host_before, history.host_after
    if before is None or after is None:
        return Verdict(name, not_checked="the host's resources were not measured at both ends")
    if before.pid != after.pid:
        return Verdict(name, not_checked="the host was restarted during the run")
    found: list[tuple[float | None, str]] = []
    kinds: set[str] = set()
    for kind, what, a, b in (
        ("fds", "open file descriptors", before.fds, after.fds),
        ("connections", "connections on its agent port", before.connections, after.connections),
        ("tasks", "asyncio tasks", before.tasks, after.tasks),
    ):
        if a is not None and b is not None and b > a:
            found.append((None, f"the host holds {b} {what} after the run, {a} before it"))
            kinds.add(kind)
    return _verdict(name, history, 3, found, tolerances, kinds)


INVARIANTS: dict[str, Invariant] = {
    inv.name: inv
    for inv in (
        Invariant(
            "answers_belong_to_requests", "every answer belongs to its request", answers_belong_to_requests
        ),
        Invariant(
            "requests_end_by_deadline",
            "no call outlives the deadline its stack promises",
            requests_end_by_deadline,
        ),
        Invariant(
            "recovers_after_faults",
            "after the last fault ends, calls are answered correctly again within the recovery time",
            recovers_after_faults,
        ),
        Invariant(
            "no_errors_without_faults",
            "no error reaches a caller while no fault is active",
            no_errors_without_faults,
        ),
        Invariant(
            "errors_are_agenkit_types",
            "errors are of agenkit's documented types (not a bare Exception)",
            errors_are_agenkit_types,
        ),
        Invariant("open_circuit_fails_fast", "an open circuit fails fast", open_circuit_fails_fast),
        Invariant(
            "half_open_admits_limited_trials",
            "a half-open circuit admits no more trial calls than its success_threshold",
            half_open_admits_limited_trials,
        ),
        Invariant(
            "non_transient_errors_not_retried",
            "an error that cannot be transient (a malformed payload) is not retried",
            non_transient_errors_not_retried,
        ),
        Invariant(
            "host_leaks_nothing",
            "the host leaks no connections, file descriptors or tasks across the run",
            host_leaks_nothing,
        ),
    )
}


def check_all(history: History, tolerances: Tolerances = TOLERANCES) -> dict[str, Verdict]:
    """Every invariant's verdict on ``history``."""
    return {name: inv.check(history, tolerances) for name, inv in INVARIANTS.items()}
