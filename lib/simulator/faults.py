"""Which fault, if any, a request gets: from its `X-Sim-Fault` header or from the configured rates."""
from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

from .config import FAULTS, SimConfig


@dataclass(frozen=True)
class Fault:
    name: str
    after_events: int = 3  # stream faults: data events sent before the fault
    delay_s: float = 2.0  # slow-headers
    retry_after: str = "1"  # 429-retry-after


class FaultPlan:
    """Picks faults and counts requests by `X-Sim-Fault-Key` (tests read the counts via /_sim/requests)."""

    def __init__(self, config: SimConfig):
        self.config = config
        self._rng = random.Random(config.seed ^ 0x5EED)
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, key: str) -> int:
        return self._seen[key]

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

    def pick(self, headers, *, generation: bool) -> Fault | None:
        key = headers.get("x-sim-fault-key")
        with self._lock:
            if key is not None:
                self._seen[key] += 1
                seen = self._seen[key]
        name = headers.get("x-sim-fault")
        if name:
            name = name.strip().lower()
            if name not in FAULTS:
                return None
            times = headers.get("x-sim-fault-times")
            if times is not None and key is not None and seen > int(times or 0):
                return None
        elif generation and self.config.fault_rates:
            name = self._random_fault()
            if name is None:
                return None
        else:
            return None
        return Fault(
            name=name,
            after_events=int(headers.get("x-sim-drop-after", self.config.drop_after)),
            delay_s=float(headers.get("x-sim-delay-ms", self.config.slow_headers_s * 1000)) / 1000,
            retry_after=headers.get("x-sim-retry-after", "1"),
        )

    def _random_fault(self) -> str | None:
        roll = self._rng.random()
        for name, rate in self.config.fault_rates.items():
            if roll < rate:
                return name
            roll -= rate
        return None
