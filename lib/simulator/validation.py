"""Request validation as Dify does it: the JSON body, `user`, and the app's input form."""
from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request

from .apps import SimApp
from .errors import DifyError, bad_request, invalid_param


async def json_body(request: Request) -> dict[str, Any]:
    """Dify's `request.get_json()`: 415 for a non-JSON Content-Type, 400 for an empty or malformed body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise DifyError(
            415,
            "unsupported_media_type",
            "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
        )
    raw = await request.body()
    if not raw.strip():
        raise bad_request("Invalid JSON payload received or JSON payload is empty.")
    try:
        import orjson

        body = orjson.loads(raw)
    except ValueError:
        if not request.app.state.sim.profile(request).newer_fields:
            from .payloads import MALFORMED_JSON

            raise bad_request(MALFORMED_JSON) from None  # 1.12 (captures 28, 59)
        raise bad_request("Failed to decode JSON object: the request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("Invalid JSON payload received or JSON payload is empty.")
    return body


def require_user(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise invalid_param("Arg user must be provided.")
    if not isinstance(value, str):
        raise invalid_param("user must be a string.")
    return value


def response_mode(body: dict) -> str:
    mode = body.get("response_mode") or "blocking"
    if mode not in ("streaming", "blocking"):
        raise invalid_param("response_mode must be 'streaming' or 'blocking'.")
    return mode


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def validate_inputs(app: SimApp, inputs: Any, stored: dict | None = None) -> dict:
    """Check `inputs` against the app's `user_input_form` (required, select options, numbers, lengths)."""
    if inputs is None:
        raise invalid_param("inputs is required in request body")
    if not isinstance(inputs, dict):
        raise invalid_param("inputs must be an object")
    if stored is not None:  # an existing conversation reuses its stored inputs
        return stored
    clean: dict[str, Any] = {}
    for item in app.input_form:
        (control, spec), = item.items()
        var = spec["variable"]
        value = inputs.get(var)
        if value in (None, ""):
            if spec.get("required"):
                raise invalid_param(f"{var} is required in input form")
            value = spec.get("default") if spec.get("default") not in ("", None) else None
            if value is not None:
                clean[var] = value
            continue
        if control == "select":
            if value not in spec.get("options", []):
                raise invalid_param(f"{var} in input form must be one of the following: {spec.get('options')}")
        elif control == "number":
            if isinstance(value, bool):
                raise invalid_param(f"{var} in input form must be a valid number")
            try:
                value = float(value) if "." in str(value) else int(value)
            except (TypeError, ValueError):
                raise invalid_param(f"{var} in input form must be a valid number") from None
        else:
            if not isinstance(value, str):
                raise invalid_param(f"{var} in input form must be a string")
            limit = spec.get("max_length")
            if limit and len(value) > limit:
                raise invalid_param(f"{var} in input form must be less than {limit} characters")
        clean[var] = value
    return clean


def validate_files(app: SimApp, files: Any, known_file) -> list[dict]:
    """`files`: a list of `{type, transfer_method, url | upload_file_id}`; returns file descriptors."""
    if files in (None, []):
        return []
    if not isinstance(files, list):
        raise invalid_param("files must be a list")
    if not app.file_upload:
        raise invalid_param("File upload is not enabled for this app.")
    if len(files) > 10:
        raise invalid_param("Number of files exceeds the limit of 10.")
    out = []
    for f in files:
        if not isinstance(f, dict):
            raise invalid_param("each item of files must be an object")
        ftype = f.get("type")
        method = f.get("transfer_method")
        if ftype not in ("image", "document", "audio", "video", "custom"):
            raise invalid_param("file type must be one of image, document, audio, video, custom")
        if method == "remote_url":
            url = f.get("url")
            if not url:
                raise invalid_param("url is required when transfer_method is remote_url")
            out.append({"type": ftype, "name": str(url).rsplit("/", 1)[-1] or "remote file", "url": url})
        elif method == "local_file":
            record = known_file(f.get("upload_file_id"))
            if record is None:
                raise invalid_param("Invalid upload file id: upload the file first with /files/upload.")
            out.append({"type": ftype, "name": record["name"], "upload_file_id": record["id"]})
        else:
            raise invalid_param("transfer_method must be remote_url or local_file")
    return out
