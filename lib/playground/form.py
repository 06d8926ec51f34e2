"""An app's input form (`user_input_form` of /parameters): its fields, and checking values against them.

The page renders one widget per `FormField` and hands the raw widget values to `validate_inputs`,
which returns the `inputs` to send plus one readable message per problem, so a bad value is caught
before Dify answers 400 `invalid_param` (and the user's text is never lost to a failed request).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

# Controls the Playground renders. `external_data_tool` (easy-UI apps) is filled by Dify itself.
SUPPORTED_CONTROLS = frozenset(
    {"text-input", "paragraph", "select", "number", "checkbox", "json_object", "file", "file-list"}
)
FILE_CONTROLS = frozenset({"file", "file-list"})
TEXT_CONTROLS = frozenset({"text-input", "paragraph"})  # the ones `max_length` applies to


@dataclass(frozen=True)
class FormField:
    variable: str
    label: str
    control: str  # text-input | paragraph | select | number | checkbox | json_object | file | file-list | other
    required: bool = False
    default: Any = None
    max_length: int | None = None
    options: tuple[str, ...] = ()
    hint: str = ""
    placeholder: str = ""
    allowed_file_types: tuple[str, ...] = ()
    allowed_file_extensions: tuple[str, ...] = ()

    @property
    def supported(self) -> bool:
        return self.control in SUPPORTED_CONTROLS

    @property
    def is_file(self) -> bool:
        return self.control in FILE_CONTROLS

    @classmethod
    def from_spec(cls, control: str, spec: dict[str, Any]) -> FormField:
        max_length = spec.get("max_length")
        try:
            max_length = int(max_length) if max_length not in (None, "", 0) else None
        except (TypeError, ValueError):
            max_length = None
        variable = str(spec.get("variable") or "")
        return cls(
            variable=variable,
            label=str(spec.get("label") or variable),
            control=control,
            required=bool(spec.get("required")),
            default=spec.get("default"),
            max_length=max_length,
            options=tuple(str(o) for o in spec.get("options") or ()),
            hint=str(spec.get("hint") or ""),
            placeholder=str(spec.get("placeholder") or ""),
            allowed_file_types=tuple(spec.get("allowed_file_types") or ()),
            allowed_file_extensions=tuple(spec.get("allowed_file_extensions") or ()),
        )

    def initial_value(self) -> Any:
        """What the widget starts with: Dify's default, in the widget's type."""
        d = self.default
        if self.control == "number":
            return _number_or_none(d)
        if self.control == "checkbox":
            return bool(d) if d not in (None, "") else False
        if self.control == "select":
            return str(d) if d not in (None, "") and str(d) in self.options else None
        if self.is_file:
            return None
        if self.control == "json_object" and isinstance(d, (dict, list)):
            return json.dumps(d, ensure_ascii=False, indent=2)
        return "" if d is None else str(d)


def parse_fields(user_input_form: list[dict[str, dict[str, Any]]]) -> tuple[FormField, ...]:
    """`user_input_form` (a list of single-key `{control: spec}` objects) as fields, in order."""
    fields = []
    for item in user_input_form or []:
        if not isinstance(item, dict):
            continue
        for control, spec in item.items():
            if isinstance(spec, dict) and spec.get("variable"):
                fields.append(FormField.from_spec(str(control), spec))
    return tuple(fields)


@dataclass(frozen=True)
class PendingFile:
    """A file the user picked, not yet uploaded to Dify. `variable` set: it fills that form field."""

    name: str
    data: bytes = field(repr=False)
    mime_type: str = "application/octet-stream"
    variable: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class FormResult:
    inputs: dict[str, Any]
    errors: list[str]
    files: list[PendingFile]  # files of file/file-list fields, uploaded at send time

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_inputs(fields: tuple[FormField, ...] | list[FormField], values: dict[str, Any]) -> FormResult:
    """Check raw widget values (`{variable: value}`) against the fields.

    Returns the `inputs` to send (empty optional fields left out, numbers as int/float, JSON parsed)
    and a message per problem, naming the field by its label as the user sees it.
    """
    inputs: dict[str, Any] = {}
    errors: list[str] = []
    files: list[PendingFile] = []
    for f in fields:
        if not f.supported:
            continue
        raw = values.get(f.variable)
        if f.is_file:
            picked = [p for p in (raw if isinstance(raw, (list, tuple)) else [raw]) if isinstance(p, PendingFile)]
            if not picked:
                if f.required:
                    errors.append(f"{f.label} is required: attach a file.")
                continue
            if f.control == "file" and len(picked) > 1:
                errors.append(f"{f.label} takes one file, got {len(picked)}.")
                continue
            files += [PendingFile(p.name, p.data, p.mime_type, f.variable) for p in picked]
            continue
        if f.control == "checkbox":
            inputs[f.variable] = bool(raw)
            continue
        if _blank(raw):
            if f.required:
                errors.append(f"{f.label} is required.")
            continue
        if f.control == "number":
            number = _number_or_none(raw)
            if number is None:
                errors.append(f"{f.label} must be a number, got {raw!r}.")
            else:
                inputs[f.variable] = number
        elif f.control == "select":
            if str(raw) not in f.options:
                errors.append(f"{f.label} must be one of: {', '.join(f.options)}.")
            else:
                inputs[f.variable] = str(raw)
        elif f.control == "json_object":
            if isinstance(raw, (dict, list)):
                inputs[f.variable] = raw
                continue
            try:
                inputs[f.variable] = json.loads(str(raw))
            except ValueError as exc:
                errors.append(f"{f.label} is not valid JSON ({exc}).")
        else:  # text-input, paragraph
            text = str(raw)
            if f.max_length and len(text) > f.max_length:
                errors.append(f"{f.label} takes at most {f.max_length:,} characters; it has {len(text):,}.")
            else:
                inputs[f.variable] = text
    return FormResult(inputs, errors, files)


def length_notice(f: FormField, value: Any) -> str | None:
    """What to say under a text field whose value is longer than the app's `max_length` (None: it fits).

    The widgets take text of any length: Streamlit's own `max_chars` drops a whole paste that is too long,
    without a word, so the user would not know why the field stayed empty. Here the text lands and stays,
    and this says why it will not be sent as it is (validate_inputs refuses it, as Dify would with 400)."""
    if not f.max_length or f.control not in TEXT_CONTROLS or not isinstance(value, str) or len(value) <= f.max_length:
        return None
    over = len(value) - f.max_length
    return (f"{f.label} has {len(value):,} characters, over this app's limit of {f.max_length:,}: nothing is sent "
            f"until it fits. Shorten it by {over:,} character{'s' if over != 1 else ''}.")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _number_or_none(v: Any) -> int | float | None:
    """A number widget's value or a CSV cell as Dify's number: int when integral, else float."""
    if v is None or isinstance(v, bool) or (isinstance(v, str) and not v.strip()):
        return None
    try:
        number = float(v)
    except (TypeError, ValueError):
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return int(number) if number.is_integer() else number
