"""File routes: upload (Dify's limits), preview, speech to text and text to speech."""
from __future__ import annotations

import mimetypes
import time

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import DifyError, invalid_param
from .server import Simulator
from .state import new_id, now
from .validation import json_body, require_user

MB = 1024 * 1024
IMAGE_EXT = {"jpg", "jpeg", "png", "webp", "gif", "svg"}
AUDIO_EXT = {"mp3", "m4a", "wav", "amr", "mpga", "webm"}
VIDEO_EXT = {"mp4", "mov", "mpeg", "webm"}
BLOCKED_EXT = {"exe", "bat", "cmd", "sh", "com", "msi", "dll", "scr"}
LIMITS = {"image": 10 * MB, "audio": 50 * MB, "video": 100 * MB, "document": 15 * MB}
AUDIO_MIME = {"audio/mp3", "audio/m4a", "audio/wav", "audio/x-wav", "audio/amr", "audio/mpga", "audio/webm"}
MAX_FORM_BYTES = 101 * MB  # above every Dify limit, so the per-type 413 decides


def _kind(extension: str) -> str:
    if extension in IMAGE_EXT:
        return "image"
    if extension in AUDIO_EXT:
        return "audio"
    if extension in VIDEO_EXT:
        return "video"
    return "document"


async def _single_file(request: Request, missing: DifyError) -> tuple[UploadFile, str | None]:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise missing
    try:
        form = await request.form(max_files=10, max_fields=100, max_part_size=MAX_FORM_BYTES)
    except Exception:  # malformed multipart is a client error in Dify, never a 500
        raise DifyError(400, "bad_request", "The multipart form could not be parsed.") from None
    files = [v for k, v in form.multi_items() if isinstance(v, UploadFile)]
    user = form.get("user")
    if not [f for k, f in form.multi_items() if k == "file" and isinstance(f, UploadFile)]:
        raise missing
    if len(files) > 1:
        raise DifyError(400, "too_many_files", "Only one file is allowed.")
    return files[0], user if isinstance(user, str) else None


def routes(sim: Simulator) -> list[Route]:
    store = sim.store

    async def upload(request: Request) -> Response:
        app = sim.app_for(request)
        upload, user = await _single_file(request, DifyError(400, "no_file_uploaded", "Please upload your file."))
        name = upload.filename or ""
        profile = sim.profile(request)
        if not name and not profile.newer_fields:  # 1.12 sees no file in a part without a name (capture 45)
            raise DifyError(400, "no_file_uploaded", "Please upload your file.")
        if not name:
            raise DifyError(400, "filename_not_exists_error", "The specified filename does not exist.")
        if "/" in name or "\\" in name:
            raise invalid_param("Filename contains invalid characters.")
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension in BLOCKED_EXT:
            raise invalid_param(f"File extension '.{extension}' is not allowed.")
        mime = upload.content_type or mimetypes.guess_type(name)[0]
        if not mime:
            raise DifyError(415, "unsupported_file_type", "File type not allowed.")
        data = await upload.read()
        limit = LIMITS[_kind(extension)]
        if len(data) > limit:
            raise DifyError(413, "file_too_large", f"File size exceeded. {len(data) / MB:.1f} MB > {limit // MB} MB")
        user = user or "DEFAULT-USER"
        end_user = store.end_user(app, user)
        file_id = new_id()
        record = {
            "id": file_id, "name": name, "size": len(data), "extension": extension, "mime_type": mime,
            "created_by": end_user["id"], "created_at": now(),
            "preview_url": f"/files/{file_id}/preview", "source_url": f"/files/{file_id}/preview",
            "original_url": None, "user_id": end_user["id"], "tenant_id": end_user["tenant_id"],
            "conversation_id": None, "file_key": f"upload_files/{file_id}.{extension}", "reference": None,
        }
        if not profile.newer_fields:  # 1.12's upload answer (captures 42, 43)
            record.update(preview_url=None, user_id=None, file_key=None)
            del record["reference"]
        store.files[file_id] = {**record, "_bytes": data, "_app": app.key, "_user": user}
        return JSONResponse(record, status_code=201)

    async def preview(request: Request) -> Response:
        app = sim.app_for(request)
        record = store.files.get(str(request.path_params["file_id"]))
        if record is None:
            raise DifyError(404, "file_not_found", "The requested file was not found.")
        if record["_app"] != app.key:
            raise DifyError(403, "file_access_denied", "Access to the requested file is denied.")
        headers = {}
        if request.query_params.get("as_attachment") in ("true", "1"):
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{record['name']}"
        return Response(record["_bytes"], media_type=record["mime_type"], headers=headers)

    async def audio_to_text(request: Request) -> Response:
        app = sim.app_for(request)
        upload, user = await _single_file(request, DifyError(400, "no_audio_uploaded", "Please upload your audio."))
        if not app.speech_to_text:
            raise DifyError(400, "speech_to_text_disabled", "Speech to text is not enabled for this app.")
        if (upload.content_type or "") not in AUDIO_MIME:
            raise DifyError(415, "unsupported_audio_type", "Audio type not allowed.")
        data = await upload.read()
        if len(data) > 30 * MB:
            raise DifyError(413, "audio_too_large", "Audio size exceeded.")
        seconds = max(1, len(data) // 16000)
        return JSONResponse({"text": f"(simulated transcript of {upload.filename}, about {seconds} s of audio) Hello, this is a test."})

    async def text_to_audio(request: Request) -> Response:
        app = sim.app_for(request)
        body = await json_body(request)
        user = require_user(body.get("user"))
        text = body.get("text")
        if body.get("message_id"):
            msg = store.message(app, user, str(body["message_id"]))
            if msg is None:
                raise DifyError(404, "not_found", "Message Not Exists.")
            text = msg["answer"]
        if not app.text_to_speech:
            raise invalid_param("Text to speech is not enabled for this app.")
        if not isinstance(text, str) or not text.strip():
            raise invalid_param("text or message_id is required")
        return Response(silent_mp3(len(text)), media_type="audio/mpeg")

    return [
        Route("/v1/files/upload", upload, methods=["POST"]),
        Route("/v1/files/{file_id:uuid}/preview", preview, methods=["GET"]),
        Route("/v1/audio-to-text", audio_to_text, methods=["POST"]),
        Route("/v1/text-to-audio", text_to_audio, methods=["POST"]),
    ]


def silent_mp3(text_length: int) -> bytes:
    """A valid MPEG-1 Layer III stream of silence, about 60 ms per 10 characters (max ~10 s)."""
    header = bytes([0xFF, 0xFB, 0x90, 0x64])  # MPEG-1 L3, 128 kbit/s, 44.1 kHz, no padding, joint stereo
    frame = header + bytes(417 - len(header))  # all-zero side info and data decode as silence
    frames = min(400, max(4, text_length // 4))
    return frame * frames


__all__ = ["routes", "silent_mp3", "time"]
