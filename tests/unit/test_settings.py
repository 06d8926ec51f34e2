"""lib.settings: target list, sources and their precedence, key masking."""
from __future__ import annotations

import pytest

from lib.settings import (
    DIFY_CLOUD_URL,
    SettingsError,
    Target,
    TargetNotFoundError,
    default_target,
    find_target,
    load_targets,
    mask_key,
    read_secrets_file,
)

SIM_NAMES = [
    "Simulator · chat",
    "Simulator · advanced-chat",
    "Simulator · agent",
    "Simulator · completion",
    "Simulator · workflow",
    "Simulator · judge",
]
KEY = "app-0123456789abcdefWXYZ"


def load(environ=None, secrets=None, env_file=None):
    """load_targets isolated from the real environment and the repo's .env."""
    return load_targets(secrets, environ=environ or {}, env_file=env_file)


def test_simulator_targets_always_present_with_default_url():
    targets = load()
    assert [t.name for t in targets] == SIM_NAMES
    assert [t.api_key for t in targets] == [
        "app-sim-chat",
        "app-sim-advanced-chat",
        "app-sim-agent",
        "app-sim-completion",
        "app-sim-workflow",
        "app-sim-judge",
    ]
    assert {t.base_url for t in targets} == {"http://127.0.0.1:5001/v1"}
    assert {t.kind for t in targets} == {"simulator"}
    assert default_target(targets).name == "Simulator · chat"


def test_simulator_url_from_env_is_normalised():
    targets = load({"SIMULATOR_URL": "http://127.0.0.1:6001/"})
    assert {t.base_url for t in targets} == {"http://127.0.0.1:6001/v1"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.dify.ai", "https://api.dify.ai/v1"),
        ("https://api.dify.ai/v1", "https://api.dify.ai/v1"),
        (" https://api.dify.ai/v1/ ", "https://api.dify.ai/v1"),
        ("http://dify.internal:8080/v1//", "http://dify.internal:8080/v1"),
    ],
)
def test_base_url_normalised(given, expected):
    assert Target("x", given, KEY).base_url == expected


@pytest.mark.parametrize("bad", ["", "api.dify.ai/v1", "ftp://host/v1", "https://"])
def test_bad_base_url_is_a_clear_error(bad):
    with pytest.raises(SettingsError, match="http:// or https://"):
        Target("x", bad, KEY)


def test_dify_from_env_comes_first():
    targets = load({"DIFY_API_BASE": "https://api.dify.ai/", "DIFY_API_KEY": KEY})
    first = default_target(targets)
    assert (first.name, first.base_url, first.api_key, first.kind) == ("Dify", "https://api.dify.ai/v1", KEY, "dify")
    assert [t.name for t in targets[1:]] == SIM_NAMES


def test_dify_target_name_from_env():
    targets = load({"DIFY_API_BASE": "https://d.example/v1", "DIFY_API_KEY": KEY, "DIFY_TARGET_NAME": "Prod bot"})
    assert targets[0].name == "Prod bot"


def test_key_alone_means_dify_cloud():
    assert load({"DIFY_API_KEY": KEY})[0].base_url == DIFY_CLOUD_URL


def test_base_without_key_is_an_error():
    with pytest.raises(SettingsError, match="DIFY_API_KEY"):
        load({"DIFY_API_BASE": "https://d.example/v1"})


def test_dotenv_file_is_read(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"DIFY_API_BASE=https://from-dotenv.example\nDIFY_API_KEY={KEY}\n")
    first = load(env_file=env_file)[0]
    assert (first.base_url, first.api_key) == ("https://from-dotenv.example/v1", KEY)


def test_secrets_top_level_keys():
    first = load(secrets={"DIFY_API_BASE": "https://from-secrets.example", "DIFY_API_KEY": KEY})[0]
    assert (first.name, first.base_url) == ("Dify", "https://from-secrets.example/v1")


def test_precedence_env_then_dotenv_then_secrets(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DIFY_API_BASE=https://dotenv.example\nDIFY_API_KEY=app-dotenv-key-1111\n")
    secrets = {"DIFY_API_BASE": "https://secrets.example", "DIFY_API_KEY": "app-secret-key-2222"}

    everything = load({"DIFY_API_BASE": "https://env.example", "DIFY_API_KEY": "app-env-key-0000"}, secrets, env_file)
    assert (everything[0].base_url, everything[0].api_key) == ("https://env.example/v1", "app-env-key-0000")

    no_env = load({}, secrets, env_file)[0]
    assert (no_env.base_url, no_env.api_key) == ("https://dotenv.example/v1", "app-dotenv-key-1111")

    # An empty environment variable does not hide the next source.
    empty_env = load({"DIFY_API_BASE": "", "DIFY_API_KEY": ""}, secrets)[0]
    assert empty_env.base_url == "https://secrets.example/v1"


def test_real_environment_is_read_by_default(monkeypatch):
    monkeypatch.setenv("DIFY_API_BASE", "https://monkeypatched.example")
    monkeypatch.setenv("DIFY_API_KEY", KEY)
    monkeypatch.setenv("DIFY_TARGET_NAME", "From env")
    assert load_targets()[0].name == "From env"


def test_targets_tables_from_secrets():
    secrets = {
        "targets": {
            "staging": {"base_url": "https://staging.example", "api_key": "app-staging-aaaa1111"},
            "prod": {"base_url": "https://prod.example/v1/", "api_key": "app-prod-bbbb2222"},
        }
    }
    targets = load(secrets=secrets)
    assert [t.name for t in targets] == ["staging", "prod", *SIM_NAMES]
    assert targets[1].base_url == "https://prod.example/v1"
    assert {targets[0].kind, targets[1].kind} == {"dify"}


def test_env_dify_comes_before_tables():
    secrets = {"targets": {"staging": {"base_url": "https://s.example", "api_key": "app-staging-aaaa1111"}}}
    names = [t.name for t in load({"DIFY_API_KEY": KEY}, secrets)]
    assert names[:2] == ["Dify", "staging"]


def test_incomplete_table_is_a_clear_error():
    with pytest.raises(SettingsError, match=r"\[targets.staging\].*api_key"):
        load(secrets={"targets": {"staging": {"base_url": "https://s.example"}}})


def test_duplicate_names_rejected():
    secrets = {"targets": {"dify": {"base_url": "https://s.example", "api_key": "app-staging-aaaa1111"}}}
    with pytest.raises(SettingsError, match="Two targets"):
        load({"DIFY_API_KEY": KEY}, secrets)


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        (KEY, "app-…WXYZ"),
        ("app-sim-chat", "app-…chat"),
        ("app-abc", "app-…"),  # too short: reveal nothing
        ("", "…"),
        (None, "…"),
    ],
)
def test_mask_key(key, masked):
    assert mask_key(key) == masked


def test_key_absent_from_repr_and_str():
    target = Target("Dify", "https://api.dify.ai", KEY)
    for text in (repr(target), str(target), f"{target}", repr([target]), repr({"t": target})):
        assert KEY not in text
        assert "app-…WXYZ" in text
    assert target.masked_key == "app-…WXYZ"
    assert target.api_key == KEY  # still usable by the client


def test_errors_do_not_leak_the_key():
    with pytest.raises(SettingsError) as info:
        Target("x", "nope", KEY)
    assert KEY not in str(info.value)


def test_find_target_ignores_case_and_spaces():
    targets = load()
    assert find_target(targets, "  simulator · WORKFLOW ").api_key == "app-sim-workflow"


def test_find_target_unknown_lists_names():
    with pytest.raises(TargetNotFoundError) as info:
        find_target(load(), "staging")
    message = str(info.value)
    assert "'staging'" in message
    assert all(name in message for name in SIM_NAMES)
    assert isinstance(info.value, LookupError)


def test_default_target_of_nothing_is_an_error():
    with pytest.raises(SettingsError):
        default_target([])


def test_read_secrets_file(tmp_path):
    path = tmp_path / "secrets.toml"
    assert read_secrets_file(path) is None
    path.write_text('DIFY_API_KEY = "app-x"\n[targets.staging]\nbase_url = "https://s.example"\napi_key = "app-y"\n')
    assert read_secrets_file(path) == {
        "DIFY_API_KEY": "app-x",
        "targets": {"staging": {"base_url": "https://s.example", "api_key": "app-y"}},
    }


def test_the_gateway_is_a_target_when_its_url_and_a_caller_key_are_set():
    targets = load({"GATEWAY_URL": "http://127.0.0.1:8080", "GATEWAY_CALLER_KEY": "gw-demo-key"})
    assert [t.name for t in targets] == [*SIM_NAMES, "Via gateway"]
    gateway = targets[-1]
    assert (gateway.base_url, gateway.api_key, gateway.kind) == ("http://127.0.0.1:8080/v1", "gw-demo-key", "dify")
    assert "gw-demo-key" not in repr(gateway)
    # Half a setting is no target (the URL alone cannot call the gateway), and the default stays first.
    assert [t.name for t in load({"GATEWAY_URL": "http://127.0.0.1:8080"})] == SIM_NAMES
    assert [t.name for t in load({"GATEWAY_CALLER_KEY": "gw-demo-key"})] == SIM_NAMES
