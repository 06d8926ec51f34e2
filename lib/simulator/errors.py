"""Dify's error envelope, `{"code", "message", "status"}`, as the simulator raises and renders it."""
from __future__ import annotations

from starlette.responses import JSONResponse


class DifyError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"code": self.code, "message": self.message, "status": self.status},
            status_code=self.status,
            headers=self.headers,
        )


def invalid_param(message: str) -> DifyError:
    return DifyError(400, "invalid_param", message)


def bad_request(message: str) -> DifyError:
    return DifyError(400, "bad_request", message)


def not_found(message: str) -> DifyError:
    return DifyError(404, "not_found", message)


UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="api"'}
MODE_MISMATCH = "Please check if your app mode matches the right API route."
NOT_CHAT_APP = DifyError(400, "not_chat_app", MODE_MISMATCH)
NOT_WORKFLOW_APP = DifyError(400, "not_workflow_app", MODE_MISMATCH)
APP_UNAVAILABLE = DifyError(400, "app_unavailable", "App unavailable, please check your app configurations.")
CONVERSATION_NOT_EXISTS = not_found("Conversation Not Exists.")
MESSAGE_NOT_EXISTS = not_found("Message Not Exists.")
INTERNAL = DifyError(
    500,
    "internal_server_error",
    "The server encountered an internal error and was unable to complete your request. "
    "Either the server is overloaded or there is an error in the application.",
)
