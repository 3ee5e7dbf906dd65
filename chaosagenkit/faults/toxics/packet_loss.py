"""``packet_loss``: emulate what packet loss does to a TCP stream (an emulation, not real loss).

A userspace proxy sits above TCP: it cannot drop a segment, because the
kernel would retransmit it before the proxy ever saw it missing. What an
application feels from loss on a TCP connection is not missing bytes but
*stalls*: a lost segment, and every byte after it (in-order delivery,
head-of-line blocking), waits for the retransmission. This toxic models that:

- data is cut into segments of ``segment_size`` bytes (an MSS);
- each transmission of a segment is lost with probability ``loss_rate``;
  right after a loss the next transmission is lost with probability
  ``correlation + (1 - correlation) * loss_rate`` (a two-state, Gilbert-style
  model: losses come in bursts when ``correlation`` > 0);
- a lost transmission is retried after the retransmission timeout, which
  starts at ``rto`` ms (Linux's minimum RTO is 200 ms) and doubles with each
  consecutive loss of the same segment (exponential backoff), capped at
  ``max_rto`` ms; a delivered segment resets it to ``rto``;
- after ``max_retries`` consecutive losses of one segment the connection is
  reset, as TCP gives up (Linux ``tcp_retries2`` is 15);
- bytes are never lost, reordered or corrupted: only delayed.

Not modelled: fast retransmit and tail-loss probes (a sender with enough
data in flight recovers from an isolated loss within a round trip instead
of an RTO), loss of ACKs, and congestion-window reduction. For RPC traffic
of small messages, where an RTO is what a loss costs, the stalls are
realistic; for bulk transfers they are pessimistic.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.toxics.base import (
    MAX_DURATION_MS,
    Deliver,
    Instruction,
    Reset,
    Toxic,
    ToxicConfig,
    ToxicState,
)

__all__ = ["PacketLossConfig", "PacketLossState", "PacketLossToxic"]


@dataclass(frozen=True)
class PacketLossConfig(ToxicConfig):
    loss_rate: float = 0.0
    correlation: float = 0.0
    rto_ms: int = 200
    max_rto_ms: int = 120_000
    max_retries: int = 15
    segment_size_bytes: int = 1460

    ATTRIBUTES = {
        "loss_rate": "loss_rate",
        "correlation": "correlation",
        "rto": "rto_ms",
        "max_rto": "max_rto_ms",
        "max_retries": "max_retries",
        "segment_size": "segment_size_bytes",
    }

    def validate(self) -> None:
        self._check_range("loss_rate", 0, 1)
        self._check_range("correlation", 0, 1)
        self._check_range("rto_ms", 1, MAX_DURATION_MS)
        self._check_range("max_rto_ms", 1, MAX_DURATION_MS)
        self._check_range("max_retries", 0, 1000)
        self._check_range("segment_size_bytes", 1, 1 << 20)
        if self.max_rto_ms < self.rto_ms:
            raise ConfigurationError("max_rto", f"must be >= rto ({self.rto_ms}), got {self.max_rto_ms}")


class PacketLossState(ToxicState):
    __slots__ = ("free_at", "last_lost")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.last_lost = False  # was the previous transmission lost (burst state)
        self.free_at = 0.0  # when the stream is past its last stall (in-order delivery)


class PacketLossToxic(Toxic):
    """Stall segments as TCP retransmission would."""

    type_name = "packet_loss"
    Config = PacketLossConfig
    State = PacketLossState
    config: PacketLossConfig

    def feed(self, state: PacketLossState, data: bytes, now: float) -> list[Instruction]:
        config = self.config
        out: list[Instruction] = []
        size = config.segment_size_bytes
        pending = bytearray()  # consecutive segments due at the same time go out together
        pending_at = max(now, state.free_at)
        for offset in range(0, len(data), size):
            losses = self._losses(state)
            if losses > config.max_retries:
                if pending:
                    out.append(Deliver(pending_at, bytes(pending)))
                state.act(config.max_retries + 1)
                out.append(Reset(pending_at + self._stall(config.max_retries + 1)))
                return out
            due = max(now + self._stall(losses), state.free_at)
            if losses:
                state.act(losses)
            if due != pending_at and pending:
                out.append(Deliver(pending_at, bytes(pending)))
                pending.clear()
            pending_at = due
            state.free_at = due
            pending += data[offset : offset + size]
        if pending:
            out.append(Deliver(pending_at, bytes(pending)))
        return out

    def _losses(self, state: PacketLossState) -> int:
        """How many transmissions of the next segment are lost before one gets through."""
        config = self.config
        losses = 0
        while losses <= config.max_retries:
            if state.last_lost:
                p = config.correlation + (1 - config.correlation) * config.loss_rate
            else:
                p = config.loss_rate
            lost = p > 0 and state.rng.random() < p
            state.last_lost = lost
            if not lost:
                break
            losses += 1
        return losses

    def _stall(self, losses: int) -> float:
        """Seconds spent in retransmission timeouts for ``losses`` consecutive losses."""
        rto, cap = self.config.rto_ms, self.config.max_rto_ms
        total = 0
        for attempt in range(losses):
            total += min(rto * (2**attempt), cap)
        return total / 1000.0
