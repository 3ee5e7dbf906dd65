"""Every limit and default of chaosagenkit, in one place.

A value here means the same wherever it applies: a service fault and a
network toxic share their TTL default and maximum, a seed has one range
whether it comes from a CLI option, an experiment key or ``POST /seed``,
and both control planes (chaos host, fault proxy) share their timeouts.
``chaosagenkit.validation`` checks input against these; nothing else
hard-codes them. Pure constants: importing this module costs nothing.
"""

from __future__ import annotations

__all__ = [
    "CONTROL_BODY_TIMEOUT_S",
    "CONTROL_HEADER_TIMEOUT_S",
    "CONTROL_IDLE_TIMEOUT_S",
    "CONTROL_MAX_BODY_BYTES",
    "CONTROL_MAX_CONNECTIONS",
    "DEFAULT_TTL_S",
    "MAX_CPU_THREADS",
    "MAX_MEMORY_MIB",
    "MAX_PADDING_BYTES",
    "MAX_SEED",
    "MAX_TIME_MS",
    "MAX_TTL_S",
    "RANDOM_SEED_BELOW",
]

# -- faults --------------------------------------------------------------------

#: The TTL (seconds) of a fault given without one, from every entry point: the
#: activities' ``duration_s`` default, ``POST /faults`` on the host, a toxic or a
#: proxy disable on the proxy's API. The daemons take ``--default-ttl``.
DEFAULT_TTL_S = 300.0
#: The longest TTL of any fault (one day): a fault must end by itself, and beyond
#: a day a typo is likelier than intent.
MAX_TTL_S = 86_400.0
#: The longest time a fault may take to act once (a delay, a latency, a jitter,
#: a timeout): one day, in milliseconds, for service faults and toxics alike.
MAX_TIME_MS = 86_400_000
#: agenkit refuses a metadata value above 16 MiB when it builds the Message.
MAX_PADDING_BYTES = 16 * 1024 * 1024
#: The most memory one ``memory_pressure`` fault may hold (64 GiB, in MiB).
MAX_MEMORY_MIB = 65_536
#: The most busy threads one ``cpu_pressure`` fault may start.
MAX_CPU_THREADS = 64

# -- seeds ---------------------------------------------------------------------

#: Seeds are integers 0 .. MAX_SEED everywhere (random.Random takes any integer;
#: 64 bits is what other tools' seeds fit in).
MAX_SEED = 2**64 - 1
#: A seed drawn when none is given stays below this: short enough to read in a
#: journal and type back with ``--seed``.
RANDOM_SEED_BELOW = 2**31

# -- control planes (the host's control API and the proxy's API) ----------------

#: A new connection must deliver a complete request line and headers within this.
CONTROL_HEADER_TIMEOUT_S = 10.0
#: A kept-alive connection must start its next request within this, or it is closed
#: (Toxiproxy: 60 s; shorter here because both APIs are called by scripts, and every
#: common client library expires idle pooled connections before this or reconnects).
CONTROL_IDLE_TIMEOUT_S = 30.0
#: A request body must arrive within this once the headers did (Toxiproxy's ReadTimeout).
CONTROL_BODY_TIMEOUT_S = 15.0
#: Connections one control API holds at most; beyond it the one idle the longest is
#: closed (or, when every one is busy with a request, the newcomer is refused), so slow
#: or idle clients cannot use up the process's file descriptors.
CONTROL_MAX_CONNECTIONS = 128
#: The largest request body a control API reads.
CONTROL_MAX_BODY_BYTES = 1024 * 1024
