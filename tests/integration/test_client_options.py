"""lib.dify's shape: one options object, one masking rule, error sentences in errors.py, no import circle.

The options tests run against the simulator; the shape tests read lib/dify's source (its imports and
calls), so a change that brings back a circle or a sentence outside errors.py fails here.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from lib import dify
from lib.dify import (
    AsyncDifyClient,
    CircuitBreaker,
    ClientOptions,
    DifyClient,
    DifyError,
    RateLimitError,
    RetryPolicy,
    mask,
)
from lib.dify.core import ClientCore
from lib.dify.keys import ApiKey, redact
from lib.settings import mask_key
from tests.conftest import KEYS
from tests.support.client_api import count, fault, new_key

PKG = Path(dify.__file__).parent
QUICK = {"base": 0.01, "cap": 0.01}


async def _attempts(client: DifyClient | AsyncDifyClient) -> int:
    """Call info() on a client whose headers make the simulator answer 429: the attempts it made."""
    try:
        with pytest.raises(RateLimitError) as info:
            if isinstance(client, AsyncDifyClient):
                await client.info()
            else:
                client.info()
        return info.value.attempts
    finally:
        if isinstance(client, AsyncDifyClient):
            await client.aclose()
        else:
            client.close()


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_options_object_and_keywords_configure_a_client_alike(face, sim):
    cls = AsyncDifyClient if face == "async" else DifyClient
    key_a, key_b, key_c = new_key(), new_key(), new_key()
    two = RetryPolicy(max_attempts=2, **QUICK)
    by_object = cls(sim.url, KEYS["chat"], options=ClientOptions(retry=two, headers=fault("429", key=key_a)))
    by_keywords = cls(sim.url, KEYS["chat"], retry=two, headers=fault("429", key=key_b))
    # a keyword on top of an options object wins
    both = cls(sim.url, KEYS["chat"], options=ClientOptions(retry=two, headers=fault("429", key=key_c)),
               retry=RetryPolicy(max_attempts=3, **QUICK))
    assert await _attempts(by_object) == 2 and count(sim, key_a) == 2
    assert await _attempts(by_keywords) == 2 and count(sim, key_b) == 2
    assert await _attempts(both) == 3 and count(sim, key_c) == 3


def test_the_options_a_client_was_built_with_are_kept_whole():
    opts = ClientOptions(retry=RetryPolicy(max_attempts=1), max_connections=7, headers={"X-Proxy-Token": "s3cret-token"})
    with DifyClient("http://dify.test/v1", KEYS["chat"], options=opts, rate_limit=5.0) as client:
        assert client.options.retry == RetryPolicy(max_attempts=1) and client.options.max_connections == 7
        assert client.options.rate_limit == 5.0 and opts.rate_limit is None  # the caller's object is not changed
    assert "s3cret-token" not in repr(opts)  # extra headers may carry a proxy's credentials


def test_each_client_gets_its_own_breaker_unless_one_is_shared():
    opts = ClientOptions()
    a, b = ClientCore("http://dify.test/v1", KEYS["chat"], options=opts), ClientCore("http://dify.test/v1", KEYS["chat"], options=opts)
    assert a.breaker is not None and b.breaker is not None and a.breaker is not b.breaker
    shared = CircuitBreaker()
    c, d = (ClientCore("http://dify.test/v1", KEYS["chat"], breaker=shared) for _ in range(2))
    assert c.breaker is shared and d.breaker is shared
    assert ClientCore("http://dify.test/v1", KEYS["chat"], breaker=None).breaker is None


def test_an_unknown_option_is_a_type_error_that_names_the_options():
    with pytest.raises(TypeError, match="'retyr'.*retry"):
        DifyClient("http://dify.test/v1", KEYS["chat"], retyr=RetryPolicy())
    with pytest.raises(TypeError, match="ClientOptions"):
        AsyncDifyClient("http://dify.test/v1", KEYS["chat"], options={"retry": RetryPolicy()})  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "shown"), [
    ("app-Zq9SecretKeyValue1234", "app-…1234"),
    ("app-sim-chat", "app-…chat"),
    ("app-abcde", "app-…"),  # short: its last 4 would be most of it
    ("abcdefghij", "…ghij"),
    ("averyveryverylongprefix-abcdefgh", "…efgh"),
    ("", "…"),
])
def test_one_masking_rule_for_the_client_and_the_settings(key, shown):
    assert mask(key) == mask_key(key) == shown
    if key:
        assert repr(ApiKey(key)) == str(ApiKey(key)) == shown


def test_redaction_masks_the_key_and_any_other_bearer_token_by_that_rule():
    key = ApiKey("app-Zq9SecretKeyValue1234")
    other = "gw-OtherCallersToken9876"
    text = redact(f"echo: Bearer {other}; key {key.reveal()}; Authorization: bearer {key.reveal()}", key)
    assert other not in text and key.reveal() not in text
    assert f"Bearer {mask(other)}" in text and "key app-…1234" in text and "bearer app-…1234" in text


# -- the package's shape, read from its source ----------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """The lib.dify modules a module imports, TYPE_CHECKING imports included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.update([node.module] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lib.dify."):
            out.add(node.module.split(".")[2])
    return out - {"__init__"}


def test_lib_dify_has_no_import_circle():
    graph = {p.stem: _imports(p) for p in PKG.glob("*.py") if p.stem != "__init__"}
    assert "stream" not in graph["core"] and "core" in graph["stream"]  # stream builds on core
    state: dict[str, str] = {}

    def visit(mod: str, path: list[str]) -> None:
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            assert state.get(dep) != "open", f"import circle: {' -> '.join([*path, dep])}"
            if dep not in state:
                visit(dep, [*path, dep])
        state[mod] = "done"

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])


def test_all_is_a_sorted_literal_of_every_public_name():
    tree = ast.parse((PKG / "__init__.py").read_text())
    assigned = [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)]
    assert len(assigned) == 1 and isinstance(assigned[0].value, ast.List)
    names = [e.value for e in assigned[0].value.elts if isinstance(e, ast.Constant)]
    assert len(names) == len(assigned[0].value.elts) and names == sorted(names) and len(set(names)) == len(names)
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert set(names) == {n for n in imported if not n.startswith("_")}
    assert all(hasattr(dify, n) for n in names) and "ClientOptions" in names


def test_error_sentences_are_written_only_in_errors_py():
    error_classes = {name for name, obj in inspect.getmembers(dify.errors, inspect.isclass) if issubclass(obj, DifyError)}
    for path in PKG.glob("*.py"):
        if path.stem == "errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                assert name not in error_classes, f"{path.name}:{node.lineno} builds a {name} outside errors.py"
