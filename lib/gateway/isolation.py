"""Callers kept apart: each caller's Dify `user` values live in a namespace of its own.

Dify scopes conversations, messages, files and feedback to (app, user), and every caller of one
gateway shares the gateway's one Dify app. So the gateway sends `<caller>@gw:<user>` upstream for
the `user` a caller gives (in the JSON body, the query string or the multipart form, as the route
reads it) and strips that prefix from what comes back (JSON bodies, SSE events, error messages).
Two callers passing the same `user` are two end users in Dify: neither can list, read, rename or
delete the other's conversations, messages, files or feedback.

A caller's name has no `:` (config.parse_callers splits on the first), so `<name>@gw:` prefixes are
prefix-free: no `user` one caller can send lands in another's namespace. Routes that list the whole
app (GET /app/feedbacks; GET /workflows/logs without a user filter) are refused, and the two that
read one object by id without a user (a workflow run, an end user) answer 404 unless it is the caller's.
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlencode

import orjson

DEFAULT_USER = "DEFAULT-USER"  # Dify's end user for a call without `user`: each caller gets its own

# Where each route reads `user`, and whether it may be left out (Dify then uses DEFAULT-USER).
# A required `user` that is missing or empty is passed as it came, so Dify's own 400 answers it.
USER_IN: dict[str, tuple[str, bool]] = {
    "/chat-messages": ("json", False),
    "/completion-messages": ("json", False),
    "/workflows/run": ("json", False),
    "/workflows/{workflow_id}/run": ("json", False),
    "/chat-messages/{task_id}/stop": ("json", False),
    "/completion-messages/{task_id}/stop": ("json", False),
    "/workflows/tasks/{task_id}/stop": ("json", False),
    "/messages/{message_id}/feedbacks": ("json", False),
    "/conversations/{conversation_id}/name": ("json", False),
    "/conversations/{conversation_id}/variables/{variable_id}": ("json", False),
    "/conversations/{conversation_id}": ("json", True),
    "/text-to-audio": ("json", False),
    "/messages": ("query", True),
    "/conversations": ("query", True),
    "/conversations/{conversation_id}/variables": ("query", True),
    "/messages/{message_id}/suggested": ("query", False),
    "/workflow/{run_id}/events": ("query", False),
    "/files/{file_id}/preview": ("query", True),
    "/files/upload": ("form", True),
    "/audio-to-text": ("form", False),
}
APP_WIDE = {"/app/feedbacks": "it lists the feedback of every caller of this gateway's Dify app"}
LOGS = "/workflows/logs"
LOGS_FILTER = "created_by_end_user_session_id"
OWNED = {"/workflows/run/{run_id}": ("not_found", "Workflow run not found."),
         "/end-users/{end_user_id}": ("end_user_not_found", "End user not found.")}


# A user id as a JSON string value, or inside a JSON string (a run's `inputs` is one in Dify 1.12).
_OWNER_FIELDS = re.compile(rb'(?:sys\.user_id|external_user_id)\\*"\s*:\s*\\*"([^"\\]*)')


# A form part named `user`, however the name is written (quoted or not, RFC 5987 `name*=`); the head is
# lower-cased first.
_USER_PART = re.compile(rb'content-disposition:[^\r\n]*;\s*name\*?\s*=\s*"?(?:[a-z0-9-]*\'[a-z-]*\')?user"?\s*(?:;|\r|$)')


class Refused(Exception):
    """The request cannot be passed on under caller isolation; status, code and message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CallerSpace:
    """One caller's namespace: rewrites its requests' `user` and strips the prefix from answers."""

    def __init__(self, caller: str) -> None:
        self.prefix = f"{caller}@gw:"
        p = self.prefix.encode()
        # The prefix only ever starts a string value: after a `"` (JSON, JSON inside a JSON string) or a `'`
        # (Python reprs in Dify's validation messages).
        self._quoted = (b'"' + p, b'"'), (b"'" + p, b"'")
        self._p = p

    def user(self, value: str) -> str:
        return self.prefix + value

    # -- requests ---------------------------------------------------------------------------------------

    def request(self, route: str, query: str, content_type: str, body: bytes) -> tuple[str, bytes, str]:
        """(query, body, content type) to send upstream for `route`. Raises Refused."""
        if route in APP_WIDE:
            raise Refused(403, "forbidden", f"The gateway does not pass {route}: {APP_WIDE[route]}.")
        if route == LOGS:
            return self._logs_query(query), body, content_type
        where = USER_IN.get(route)
        if where is None:
            return query, body, content_type
        place, optional = where
        if place == "query":
            return self._query(query, optional), body, content_type
        if place == "json":
            return query, *self._json(body, content_type, optional)
        return query, self._form(body, content_type, optional), content_type

    def _name(self, value, optional: bool):
        """The namespaced user, or None to pass the value on untouched (a required user left out)."""
        if value is None or value == "":
            return self.user(DEFAULT_USER) if optional else None
        if not isinstance(value, str):
            raise Refused(400, "invalid_param", "`user` must be a string.")
        return self.user(value)

    # Upstream must read the namespaced user and nothing else: werkzeug's MultiDict.get (query, form)
    # returns a key's first value, so ours goes first and every other `user` is dropped; a JSON body is
    # re-encoded with one `user` (Flask reads bytes in UTF-8, -16 or -32, as the stdlib json does).

    def _query(self, query: str, optional: bool) -> str:
        pairs = parse_qsl(query, keep_blank_values=True)
        users = [v for k, v in pairs if k == "user"]
        name = self._name(users[0] if users else None, optional)
        if name is None:
            return query
        return urlencode([("user", name)] + [(k, v) for k, v in pairs if k != "user"])

    def _logs_query(self, query: str) -> str:
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(k == LOGS_FILTER and v for k, v in pairs):
            raise Refused(403, "forbidden", f"The gateway passes {LOGS} only with `{LOGS_FILTER}=<user>` (one of "
                                            "your end users): without it the logs list every caller's runs.")
        return urlencode([(k, self.user(v) if k == LOGS_FILTER else v) for k, v in pairs])

    def _json(self, body: bytes, content_type: str, optional: bool) -> tuple[bytes, str]:
        if not body.strip():
            if not optional:
                return body, content_type
            return orjson.dumps({"user": self.user(DEFAULT_USER)}), "application/json"
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            try:  # a BOM or UTF-16/32: what orjson refuses and Flask still reads
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return body, content_type  # Dify cannot read it either: its own 400, no user reaches it
        if not isinstance(data, dict):
            return body, content_type
        name = self._name(data.get("user"), optional)
        if name is None:
            return body, content_type
        data["user"] = name
        return orjson.dumps(data), content_type

    def _form(self, body: bytes, content_type: str, optional: bool) -> bytes:
        # A byte-level edit: the `user` parts are replaced by one namespaced part in front, and the file part
        # and every other byte go upstream as sent (re-encoding the form would mean holding it parsed, up to
        # GATEWAY_MAX_BODY_MB, under a new boundary).
        found = re.search(r'boundary="?([^";,]+)"?', content_type or "", re.I)
        if not found or not content_type.lower().startswith("multipart/form-data"):
            return body
        delim = b"--" + found.group(1).encode("latin-1")
        pieces = (b"\r\n" + body).split(b"\r\n" + delim)  # a CRLF in front: the first delimiter reads like the rest
        parts = 0
        users: list[bytes] = []
        for i in range(len(pieces) - 1, 0, -1):
            piece = pieces[i]
            head_end = piece.find(b"\r\n\r\n")
            if head_end < 0 or piece.startswith(b"--"):
                continue
            parts += 1
            head = piece[:head_end].lower()
            if _USER_PART.search(head) and b"filename" not in head:
                users.insert(0, piece[head_end + 4:])
                del pieces[i]
        if not parts:
            raise Refused(400, "bad_request", "The gateway could not read this multipart/form-data body: "
                                              "parts must be separated by CRLF and the boundary.")
        name = self._name(users[0].decode("utf-8", "replace") if users else None, optional)
        if name is None:
            raise Refused(400, "invalid_param", "Arg user must be provided.")  # Dify's own words
        pieces.insert(1, b'\r\nContent-Disposition: form-data; name="user"\r\n\r\n' + name.encode())
        return (b"\r\n" + delim).join(pieces)[2:]

    # -- answers ------------------------------------------------------------------------------------------

    def strip(self, data: bytes) -> bytes:
        for quoted, bare in self._quoted:
            if quoted in data:
                data = data.replace(quoted, bare)
        return data

    def owns(self, body: bytes) -> bool:
        """Whether an object read by id (a workflow run, an end user) belongs to this caller: every user id
        it names (`sys.user_id` in a run's inputs, an end user's `external_user_id`) is in this namespace.
        One that names none (the simulator's runs carry no sys.user_id) cannot be told apart and passes."""
        return all(value.startswith(self._p) for value in _OWNER_FIELDS.findall(body))

    def stream_stripper(self) -> StreamStripper:
        """`strip` for one stream, fed its chunks as they arrive."""
        return StreamStripper(self)


class StreamStripper:
    """`CallerSpace.strip` over a stream, a line at a time: the prefix never spans a line, and an SSE frame
    ends with one, so no frame is held back waiting for the next chunk. A chunk that ends a line (nearly
    every chunk of an event stream) costs one `endswith` and one substring search; only the unfinished
    line of a frame cut across reads is held back until its end arrives."""

    __slots__ = ("_carry", "_p", "_space")

    def __init__(self, space: CallerSpace) -> None:
        self._space, self._p, self._carry = space, space._p, b""

    def feed(self, chunk: bytes) -> bytes:
        """What of `chunk` (and what was held back) can go to the caller now, stripped; b"" for nothing yet."""
        if self._carry:
            chunk, self._carry = self._carry + chunk, b""
        if not chunk.endswith(b"\n"):
            cut = chunk.rfind(b"\n") + 1
            chunk, self._carry = chunk[:cut], chunk[cut:]
        # the prefix is in every quoted form `strip` replaces: one search tells whether there is work
        return self._space.strip(chunk) if self._p in chunk else chunk

    def rest(self) -> bytes:
        """At the end of the stream: what was held back (a last line without its newline), stripped."""
        rest, self._carry = self._carry, b""
        return self._space.strip(rest) if rest else rest
