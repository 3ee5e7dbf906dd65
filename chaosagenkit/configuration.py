"""An experiment's configuration, checked before anything starts.

Pure functions (no process, no socket), used by ``chaosagenkit run`` (before
the first run) and by the control (before the sandbox is built, so plain
``chaos run`` gets the same checks). Each problem is one line naming the
configuration key.

Rules, stated once:

- ``--var K=V``: V is read as JSON when it parses as JSON (numbers, lists,
  booleans, objects, ``"quoted strings"``), else taken as the string it is.
  ``K:TYPE=V`` keeps Chaos Toolkit's explicit conversion (``str``, ``int``,
  ``float``, ``bytes``).
- A key the experiment's ``configuration`` does not declare is refused
  (Chaos Toolkit drops it silently, so a typo would change nothing).
- A value that arrives as a string (plain ``chaos run --var K=V`` passes
  strings) for a key the experiment declares as a number, boolean, list or
  object is read as JSON and must be of that kind; the empty string stays
  (it means "unset" for keys such as ``seed``).
- A client that calls a fixed ``endpoint`` must not be declared behind a
  proxy or against a chaos host this run starts: the faults would not reach
  its traffic (``target_endpoint`` needs ``target_control_url``).
- Credentials never reach a journal: a key is one when one of its words
  (split at ``_ - .`` and camelCase) is key, token, secret, password,
  passwd, credential(s), auth or apikey, or ends in token, secret or
  password (``accesstoken``). ``keys``, ``monkeys`` or ``tokens_per_request``
  are not credentials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "check_clients",
    "coerce_configuration",
    "is_credential",
    "json_kind",
    "overrides",
    "parse_var",
    "parse_vars",
    "public",
    "unknown_keys",
]

_CREDENTIAL_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "credential", "credentials", "auth"}
)
_CREDENTIAL_ENDINGS = ("token", "secret", "password")
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_CHAOS_TYPES = ("str", "string", "int", "float", "bytes")


def is_credential(name: Any) -> bool:
    """True when a configuration key's name says it holds a credential (rule above)."""
    words = [w.lower() for w in _WORDS.findall(str(name))]
    return any(w in _CREDENTIAL_WORDS or w.endswith(_CREDENTIAL_ENDINGS) for w in words)


def public(value: Any) -> Any:
    """``value`` with every credential-named key removed, at any depth (for journals)."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not is_credential(k)}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def parse_var(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (VALUE as JSON if it parses, else the string) or ``KEY:TYPE=VALUE``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--var {text!r}: expected KEY=VALUE")
    key = key.strip()
    name, colon, kind = key.rpartition(":")
    if colon and kind in _CHAOS_TYPES:
        from chaoslib import convert_to_type

        try:
            return name, convert_to_type(kind, raw)
        except (TypeError, ValueError, UnicodeEncodeError) as e:
            raise ValueError(f"--var {text!r}: not a {kind}: {e}") from e
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def parse_vars(texts: Iterable[str]) -> dict[str, Any]:
    """Every ``--var``, later ones winning (as Chaos Toolkit does)."""
    return dict(parse_var(t) for t in texts)


def unknown_keys(given: Iterable[str], declared: Iterable[str]) -> list[str]:
    """The keys of ``given`` the experiment does not declare, sorted."""
    known = set(declared)
    return sorted(k for k in set(given) if k not in known)


def json_kind(value: Any) -> str:
    """number | boolean | string | list | object | null: the JSON kind of a value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


def coerce_configuration(configuration: dict[str, Any], declared: dict[str, Any]) -> list[str]:
    """Read string values as JSON where the experiment declares another kind; in place.

    Returns one line per key whose value cannot be of the declared kind.
    """
    problems = []
    for key, value in list(configuration.items()):
        if key not in declared or not isinstance(value, str) or value == "":
            continue
        default = declared[key]
        if _is_dynamic(default) or json_kind(default) in ("string", "null"):
            continue
        kind = json_kind(default)
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if json_kind(parsed) != kind:
            problems.append(
                f"configuration '{key}': expected a {kind} like the experiment's "
                f"{json.dumps(default)}, got {value!r}"
            )
            continue
        configuration[key] = parsed
    return problems


def check_clients(
    servers: list[Any],
    clients: list[Any],
    declared_servers: list[Any] | None = None,
    declared_clients: list[Any] | None = None,
) -> list[str]:
    """One line per client whose fixed ``endpoint`` the run's faults would not reach.

    ``declared_*`` are the same declarations before substitution, to name the
    configuration key a value came from (``${target_endpoint}``).
    """
    started = {}  # name of a server this run starts -> the key its control_url would come from
    for index, server in enumerate(servers):
        if isinstance(server, dict) and not str(server.get("control_url") or "").strip():
            raw = _at(declared_servers, index).get("control_url")
            started[server.get("name")] = _placeholder(raw) or "control_url"
    problems = []
    for index, client in enumerate(clients):
        if not isinstance(client, dict):
            continue
        endpoint = str(client.get("endpoint") or "").strip()
        if not endpoint:
            continue
        key = _placeholder(_at(declared_clients, index).get("endpoint"))
        named = f"configuration '{key}'" if key else f"client '{client.get('name')}': 'endpoint'"
        if client.get("proxy"):
            problems.append(
                f"{named} ({endpoint}) bypasses proxy '{client['proxy']}': its network faults "
                "would not reach the traffic (drop the endpoint, or point the proxy at it)"
            )
        elif client.get("server") in started:
            problems.append(
                f"{named} ({endpoint}) is set but '{started[client['server']]}' is not: the faults "
                f"would go to the chaos host this run starts for '{client['server']}', not to the "
                "agent called (give the control URL of the chaos host serving that endpoint)"
            )
    return problems


def overrides(configuration: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from the experiment's own (credentials removed)."""
    return public(
        {
            key: value
            for key, value in configuration.items()
            if key not in declared or (not _is_dynamic(declared[key]) and declared[key] != value)
        }
    )


def _is_dynamic(value: Any) -> bool:
    """A configuration entry Chaos Toolkit resolves itself (``{"type": "env", ...}``, a probe)."""
    return isinstance(value, dict) and value.get("type") in ("env", "probe")


def _at(declared: list[Any] | None, index: int) -> dict[str, Any]:
    entry = declared[index] if declared and index < len(declared) else None
    return entry if isinstance(entry, dict) else {}


def _placeholder(value: Any) -> str | None:
    match = re.fullmatch(r"\$\{([^}]+)\}", value) if isinstance(value, str) else None
    return match.group(1) if match else None
