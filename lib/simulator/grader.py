"""The simulated judge's verdict: a deterministic stand-in for a grading model, not a real grader.

It answers lib.evals' grading prompt (`judge_prompt`: "Rubric: ...", "Answer to grade: ...") with the JSON
verdict `parse_verdict` reads. The rule: every phrase the rubric quotes ("..." or '...') must appear in the
answer under review, case-insensitively; PASS when all do, else FAIL naming the missing ones. A rubric that
quotes nothing cannot be graded by this rule and FAILs saying so. Anything that is not a grading prompt gets
a plain answer that says what the app expects (no verdict), so a misuse shows as "not a verdict".
"""
from __future__ import annotations

import json
import re

_RUBRIC = re.compile(r"^Rubric: (.*?)\n\n", re.MULTILINE | re.DOTALL)
_ANSWER = re.compile(r"^Answer to grade:\n(.*?)\n\nReply with JSON only", re.MULTILINE | re.DOTALL)
_QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'|“([^”]+)”")

NOT_A_PROMPT = ("I am the simulator's judge: send me lib.evals' grading prompt (a `judge` check with "
                "target \"Simulator · judge\") and I answer with a verdict.")


def quoted_phrases(rubric: str) -> list[str]:
    """The phrases `rubric` quotes, in order."""
    return [next(g for g in m.groups() if g) for m in _QUOTED.finditer(rubric)]


def grade(prompt: str) -> str:
    """The verdict, as JSON text, for a grading prompt; NOT_A_PROMPT for anything else."""
    rubric_m, answer_m = _RUBRIC.search(prompt), _ANSWER.search(prompt)
    if not rubric_m or not answer_m:
        return NOT_A_PROMPT
    rubric, answer = rubric_m.group(1), answer_m.group(1)
    phrases = quoted_phrases(rubric)
    if not phrases:
        verdict = {"pass": False, "reason": "the simulated judge checks only quoted phrases, and the rubric quotes "
                                            "none: quote the words the answer must contain, e.g. 'refund'"}
    else:
        missing = [p for p in phrases if p.casefold() not in answer.casefold()]
        if missing:
            verdict = {"pass": False, "reason": "the answer lacks " + ", ".join(repr(p) for p in missing)}
        else:
            verdict = {"pass": True, "reason": "the answer contains " + ", ".join(repr(p) for p in phrases)}
    return json.dumps(verdict, ensure_ascii=False)
