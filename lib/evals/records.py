"""What an eval run records: one CaseResult per case x target x variant x repeat, each with its turns.

Each turn keeps its full timing record (lib.dify Timing.as_dict plus the instants of the first event and
content, relative to sending) and every node event's arrival time, status, elapsed time and usage, so a
per-node waterfall and a report can be drawn from a stored run later without running it again.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .assertions import CheckResult


@dataclass
class NodeRecord:
    """One node of a workflow or chatflow run: when its started/finished events arrived (seconds after
    the request was sent) and what Dify said about it."""

    node_id: str
    node_type: str | None
    title: str | None
    started_s: float | None = None
    finished_s: float | None = None
    status: str | None = None
    elapsed_s: float | None = None  # Dify's own measure of the node
    tokens: int | None = None
    cost: float | None = None
    error: str | None = None
    currency: str | None = None  # of `cost`
    parent: str | None = None  # the node_id of the iteration or loop it ran inside


@dataclass
class TurnRecord:
    query: str
    answer: str = ""
    outputs: dict[str, Any] | None = None
    conversation_id: str | None = None
    timing: dict[str, Any] = field(default_factory=dict)  # Timing.as_dict() + first_event_s, content_s
    nodes: list[NodeRecord] = field(default_factory=list)
    # lib.waterfall.waterfall_record(timing): the client's own node spans, exact on its clock (None: no node events)
    waterfall: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None  # Dify's usage block as sent
    checks: list[CheckResult] = field(default_factory=list)  # the turn's own assertions
    error: str | None = None


@dataclass
class CaseResult:
    case_id: str
    target: str
    variant: str = "default"
    repeat: int = 0
    passed: bool = False
    error: str | None = None  # the run failed: lib.dify's sentence (the case failed without being judged)
    error_class: str | None = None
    checks: list[CheckResult] = field(default_factory=list)  # the case's assertions, on its last turn
    turns: list[TurnRecord] = field(default_factory=list)
    started_at: float | None = None  # wall clock
    seq: int = 0

    @property
    def answer(self) -> str:
        return self.turns[-1].answer if self.turns else ""

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for t in self.turns for c in t.checks if not c.passed] + [c for c in self.checks if not c.passed]

    @property
    def ttft_s(self) -> float | None:
        """The last turn's time to first token."""
        return self.turns[-1].timing.get("ttft") if self.turns else None

    @property
    def total_s(self) -> float | None:
        """All turns, end to end (queueing and retries included)."""
        values = [t.timing.get("total") for t in self.turns]
        known = [v for v in values if v is not None]
        return sum(known) if values and len(known) == len(values) else None

    @property
    def tokens(self) -> int | None:
        values: list[int] = [t.timing["total_tokens"] for t in self.turns if t.timing.get("total_tokens") is not None]
        return sum(values) if values else None

    @property
    def cost(self) -> float | None:
        values: list[float] = [t.timing["total_price"] for t in self.turns if t.timing.get("total_price") is not None]
        return sum(values) if values else None

    @property
    def currency(self) -> str:
        return str(next((t.timing["currency"] for t in self.turns if t.timing.get("currency")), "USD"))

    def reasons(self) -> list[str]:
        """Why it failed, one line each: the run's error, then every failed assertion."""
        out = [self.error] if self.error else []
        return out + [f"{c.label}: {c.reason}" for c in self.failed_checks]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(answer=self.answer, ttft_s=self.ttft_s, total_s=self.total_s, tokens=self.tokens, cost=self.cost,
                 currency=self.currency, reasons=self.reasons())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseResult:
        turns = [TurnRecord(**{**t, "nodes": [NodeRecord(**n) for n in t.get("nodes", [])],
                               "checks": [CheckResult(**c) for c in t.get("checks", [])]}) for t in d.get("turns", [])]
        keep = {k: d[k] for k in ("case_id", "target", "variant", "repeat", "passed", "error", "error_class",
                                  "started_at", "seq") if k in d}
        return cls(**keep, checks=[CheckResult(**c) for c in d.get("checks", [])], turns=turns)


@dataclass
class EvalRun:
    id: str
    suite: str
    targets: list[str]
    variants: list[str]
    status: str = "running"  # running | finished | failed (could not run) | cancelled
    results: list[CaseResult] = field(default_factory=list)
    created_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # suite digest, concurrency, repeats, targets' URLs
    saved_summary: dict[str, Any] | None = None  # as stored, for a run listed without its results

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed_count(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def pass_rate(self) -> float:
        return self.passed_count / self.total if self.total else 0.0

    @property
    def passed(self) -> bool:
        return self.status == "finished" and self.total > 0 and self.passed_count == self.total

    def summary(self) -> dict[str, Any]:
        if not self.results and self.saved_summary:
            return self.saved_summary
        costs = [r.cost for r in self.results if r.cost is not None]
        return {"total": self.total, "passed": self.passed_count, "failed": self.total - self.passed_count,
                "errors": sum(r.error is not None for r in self.results), "pass_rate": round(self.pass_rate, 4),
                "cost": round(sum(costs), 7) if costs else None}
