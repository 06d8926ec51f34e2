"""A plain web server that is not Dify: every GET and POST gets the same HTML page with status 200,
as a website or a single-page app answers a wrong base URL. For the "not a Dify URL" error paths."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from tests.support.http_server import serve

PAGE = b"<!doctype html><html><head><title>Welcome to Example Corp</title></head><body><h1>Hello</h1></body></html>"


class _Handler(BaseHTTPRequestHandler):
    def _page(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    do_GET = do_POST = _page

    def log_message(self, *args: object) -> None:  # quiet
        pass


@contextmanager
def html_server() -> Iterator[str]:
    """Serve the page on a free port; yields a base URL that looks like an API's (`.../v1`)."""
    with serve(_Handler) as url:
        yield url
