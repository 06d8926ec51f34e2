"""`metadata.usage` of a message: token counts, prices, latency (contract §10).

A workflow has no usage block: its workflow_finished carries `total_tokens` and no price. The client builds its
Usage from the nodes' `execution_metadata` instead (timing.node_usage), and says so in `price_from`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _float(v: Any) -> float:
    # Dify sends prices as decimal strings ("0.0000120"); float is exact enough for a console.
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _opt_float(v: Any) -> float | None:
    return None if v is None else _float(v)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_price: float = 0.0
    completion_price: float = 0.0
    total_price: float = 0.0
    currency: str = "USD"
    latency: float = 0.0  # seconds, as Dify measured the model call
    time_to_first_token: float | None = None  # seconds, Dify >= 1.12's own measure (None when not sent)
    time_to_generate: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Where total_price comes from: "usage" (Dify's usage block), "nodes" (the sum of a workflow's node prices),
    # or "mixed": its nodes priced in several currencies, which are not added (`node_prices` has each sum).
    price_from: str = "usage"
    node_prices: dict[str, float] = field(default_factory=dict)  # currency -> sum of the nodes' prices in it

    @property
    def price(self) -> float | None:
        """The price to show or add up: None when there is no one figure (nodes priced in several currencies)."""
        return None if self.price_from == "mixed" else self.total_price

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Usage | None:
        if not isinstance(d, dict):
            return None
        return cls(
            prompt_tokens=_int(d.get("prompt_tokens")),
            completion_tokens=_int(d.get("completion_tokens")),
            total_tokens=_int(d.get("total_tokens")),
            prompt_price=_float(d.get("prompt_price")),
            completion_price=_float(d.get("completion_price")),
            total_price=_float(d.get("total_price")),
            currency=d.get("currency") or "USD",
            latency=_float(d.get("latency")),
            time_to_first_token=_opt_float(d.get("time_to_first_token")),
            time_to_generate=_opt_float(d.get("time_to_generate")),
            raw=d,
        )
