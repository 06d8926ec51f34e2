"""A clock that moves only when a test moves it: the resilience primitives take one (CircuitBreaker(clock=...)),
so their timing is checked exactly, without sleeping and whatever the machine's load."""
from __future__ import annotations


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
