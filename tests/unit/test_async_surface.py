"""AsyncDifyClient's declared types (lib/dify/async_endpoints.py) match the endpoints it really runs (Endpoints).

The declarations are read only by a type checker, so nothing at run time would notice them drifting from
Endpoints: a parameter added to `chat()` but not to its async declaration would make correct async calls fail
type checking, and a removed one would let wrong calls pass. This compares the two classes' source trees.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from lib.dify import AsyncDifyClient, DifyClient
from lib.dify.endpoints import Endpoints

DIFY = Path(__file__).resolve().parents[2] / "lib" / "dify"


def _methods(path: Path, class_name: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {f.name: f for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
    raise AssertionError(f"no class {class_name} in {path}")


SYNC = {name: f for name, f in _methods(DIFY / "endpoints.py", "Endpoints").items()
        if not name.startswith("_") or name in ("_call", "_stream", "_stop_for")}  # _chat_spec & co are not surface
ASYNC = _methods(DIFY / "async_endpoints.py", "AsyncEndpoints")


def test_the_async_surface_declares_every_endpoint_and_no_other():
    assert set(ASYNC) == set(SYNC)
    assert len(SYNC) > 40  # every endpoint, not an empty parse


@pytest.mark.parametrize("name", sorted(SYNC))
def test_each_async_declaration_takes_the_same_parameters(name):
    assert ast.dump(ASYNC[name].args) == ast.dump(SYNC[name].args)


@pytest.mark.parametrize("name", sorted(SYNC))
def test_blocking_endpoints_are_coroutines_of_the_sync_result_and_streams_async_streams(name):
    sync, declared = SYNC[name], ASYNC[name]
    assert sync.returns is not None and declared.returns is not None
    sync_type, async_type = ast.unparse(sync.returns), ast.unparse(declared.returns)
    if sync_type == "EventStream":
        assert isinstance(declared, ast.FunctionDef) and async_type == "AsyncEventStream"  # a stream is opened, not awaited
    else:
        assert isinstance(declared, ast.AsyncFunctionDef) and async_type == sync_type


def test_at_run_time_both_clients_run_the_endpoints_written_once():
    assert issubclass(DifyClient, Endpoints) and issubclass(AsyncDifyClient, Endpoints)
    for name in SYNC:
        assert getattr(AsyncDifyClient, name) is getattr(Endpoints, name) or name in ("_call", "_stream")
    assert inspect.iscoroutinefunction(AsyncDifyClient._call) and not inspect.iscoroutinefunction(AsyncDifyClient.chat)
