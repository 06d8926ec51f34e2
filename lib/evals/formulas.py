"""How an eval run is judged and summarised, as sentences: what each assertion checks, the pass rate, the diff's
thresholds. The HTML report prints them beside the figures (the code they describe is assertions.py,
records.py, matrix.py and diff.py; keep them in step)."""
from __future__ import annotations

from .diff import DEARER_RATIO, MIN_SLOWER_S, SLOWER_RATIO

ASSERTIONS: dict[str, str] = {
    "contains": "Every given text occurs in the answer (a list: all of them); ignore-case folds case first.",
    "not-contains": "None of the given texts occurs in the answer.",
    "starts-with": "The answer, leading whitespace stripped, starts with the text.",
    "equals": "The answer equals the text, both stripped of surrounding whitespace.",
    "regex": "Python re.search finds the pattern anywhere in the answer.",
    "is-json": "The answer parses as JSON (a ```json fence around it is allowed).",
    "json-schema": "The answer parses as JSON and validates against the JSON Schema (jsonschema).",
    "min-length / max-length": "The answer's length in characters is at least / at most the limit.",
    "language": "langdetect's language of the answer is the given ISO code.",
    "script": "The writing system most of the answer's letters belong to is the given one.",
    "similar": "rapidfuzz's score (the chosen method, after lowercasing and dropping punctuation) against the "
               "reference, 0 to 1, is at least `min`.",
    "outputs.FIELD": "The workflow output at that path equals (or not-equals, contains, regex, exists) the value; "
                     "an app without workflow outputs fails it.",
    "max-ttft-ms": "The turn's time to first token (sent to first content) is at most the limit; no first token fails.",
    "max-total-ms": "The turn's total time (the call began to its end, queueing and retries included) is at most "
                    "the limit.",
    "max-tokens / max-cost": "Dify's reported tokens / price of the answer are at most the limit; none reported fails.",
    "judge": "Another target grades the answer against the rubric and replies {\"pass\": ..., \"reason\": ...} or "
              "PASS/FAIL first; any other reply fails the check, quoting it.",
}

RUN: dict[str, str] = {
    "answer": "An answer is one case x target x variant x repeat; it passes when its run did not fail inside Dify and "
              "every assertion of each turn and of the case (checked on the last turn) passed.",
    "pass_rate": "Pass rate = answers passed / answers run. The CI gate passes when every answer passed, or when the "
                 "pass rate is at least --min-pass-rate.",
    "cell": "A matrix cell (case x target) passes when every repeat passed; its time is the median total time of "
            "its repeats, its cost their mean.",
    "time": "Total time of an answer = the sum of its turns' total times; TTFT is the last turn's.",
}

DIFF: dict[str, str] = {
    "match": "Cells are matched by (case, target, variant); when each run has one target and they differ, by "
             "(case, variant).",
    "newly_failing": "Newly failing: the cell passed in the baseline and fails now. Fixed: the reverse.",
    "slower": f"Slower: the cell's median total time grew by more than {SLOWER_RATIO:.0%} of the baseline's and by "
              f"more than {MIN_SLOWER_S * 1000:.0f} ms.",
    "dearer": f"Dearer: the cell's median cost grew by more than {DEARER_RATIO:.0%} of the baseline's.",
}
