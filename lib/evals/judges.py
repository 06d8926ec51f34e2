"""The apps that grade `judge` assertions: how each is asked.

A chat app gets the grading prompt as its query. A completion app has no query of its own: its prompt is
built from its input form (Dify's /parameters), so the grading prompt goes into its `query` variable (the
name Dify's completion template gives it), else into its first paragraph or text input; the form's other
required variables get their defaults. A form the judge cannot fill stops the run before any answer is
asked for, with what to change, rather than failing every case with Dify's "X is required".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lib.dify import AsyncDifyClient
from lib.dify.models import AppParameters, CompletionResult

TEXT_CONTROLS = ("paragraph", "text-input")


class JudgeFormError(ValueError):
    """The completion app's input form has no place for the prompt, or required variables without defaults."""


@dataclass
class Judge:
    name: str
    client: AsyncDifyClient
    kind: str  # chat | completion
    prompt_input: str | None = None  # completion: the variable that takes the prompt
    inputs: dict[str, Any] = field(default_factory=dict)  # completion: the form's other required variables

    async def ask(self, prompt: str, user: str) -> str:
        """The judge's whole answer to `prompt` (lib.dify's errors propagate)."""
        if self.kind == "chat":
            result = await self.client.stream_chat(prompt, user=user).collect()
        else:
            assert self.prompt_input is not None
            inputs = {**self.inputs, self.prompt_input: prompt}
            result = await self.client.stream_completion(inputs, user=user).collect()
        # a chat or completion stream collects to a ChatResult (a CompletionResult) or a CompletionResult
        if not isinstance(result, CompletionResult):
            raise TypeError(f"the judge {self.name!r} answered with a {type(result).__name__}, not an answer")
        return result.answer or ""


def completion_inputs(params: AppParameters, name: str) -> tuple[str, dict[str, Any]]:
    """(the variable for the prompt, the other required variables' values) of a completion app's form."""
    fields = params.input_fields()
    texts = [f for f in fields if f.get("control") in TEXT_CONTROLS and f.get("variable")]
    chosen = (next((f for f in texts if f["variable"] == "query"), None)
              or next((f for f in texts if f["control"] == "paragraph"), None)
              or (texts[0] if texts else None))
    if chosen is None:
        raise JudgeFormError(f"the judge {name!r} is a completion app with no text variable to take the grading "
                             "prompt: give its form a paragraph variable named `query`, or use a chat app as the judge")
    inputs: dict[str, Any] = {}
    unfilled = []
    for f in fields:
        var = f.get("variable")
        if not var or var == chosen["variable"] or not f.get("required"):
            continue
        default = f.get("default")
        options = f.get("options") or []
        if default not in (None, ""):
            inputs[var] = default
        elif f.get("control") == "select" and options:
            inputs[var] = options[0]
        else:
            unfilled.append(var)
    if unfilled:
        raise JudgeFormError(
            f"the judge {name!r} is a completion app whose form requires {', '.join(repr(v) for v in unfilled)} besides "
            f"{chosen['variable']!r} (where the grading prompt goes), and a judge is given only the prompt: make "
            "them optional or give them defaults in Dify, or use a chat app as the judge")
    return chosen["variable"], inputs
