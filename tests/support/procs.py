"""Start the project's real servers as subprocesses on free ports, for tests.

Tests talk to them over real HTTP; nothing here mocks a server.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running subprocess and the URL it answers on."""

    proc: subprocess.Popen
    url: str
    log_path: Path
    args: list[str] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_process(
    args: list[str],
    ready_url: str,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> subprocess.Popen:
    """Start `args`, wait until `ready_url` answers with any status below 500."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args[:3]} exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(ready_url, timeout=1.0).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{args[:3]} not ready at {ready_url} after {timeout}s:\n{log_path.read_text()}")


def start_simulator(tmp_dir: Path, *flags: str) -> Server:
    """`python -m lib.simulator` on a free port; `flags` are its CLI flags (e.g. "--fast")."""
    port = free_port()
    args = [sys.executable, "-m", "lib.simulator", "--host", "127.0.0.1", "--port", str(port), *flags]
    log_path = tmp_dir / f"simulator-{port}.log"
    proc = start_process(args, f"http://127.0.0.1:{port}/v1/", log_path)
    return Server(proc=proc, url=f"http://127.0.0.1:{port}/v1", log_path=log_path, args=args)
