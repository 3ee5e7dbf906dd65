"""Each component's own seed, derived from the run's one seed.

Pure (no state of the run): the sandbox, the fault proxy daemon and the
kernel relay derive their seeds the same way, in whichever process they run.
"""

from __future__ import annotations

import hashlib

__all__ = ["derive_seed"]


def derive_seed(seed: int, component: str) -> int:
    """A component's own seed, derived from the run's seed and its name.

    Stable across Python versions and processes (unlike ``hash()``), so one
    recorded run seed replays every component's fault decisions.
    """
    digest = hashlib.sha256(f"{seed}:{component}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
