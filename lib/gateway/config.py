"""The gateway's settings, from the environment (pydantic-settings).

    DIFY_API_BASE            upstream Service API (default Dify Cloud, https://api.dify.ai/v1)
    DIFY_API_KEY             the upstream app key; held here, never sent to or shown to callers (required)
    GATEWAY_API_KEYS         caller keys, comma-separated; `name:key` names a caller for logs and metrics
                             (a bare key is named caller-1, caller-2, ...) (required)
    GATEWAY_RATE_LIMIT       requests per second per caller (default 10; 0 turns the limit off)
    GATEWAY_RATE_BURST       bucket size per caller (default 20)
    GATEWAY_CORS_ORIGINS     browser origins allowed to call, comma-separated (default none; `*` for any)
    GATEWAY_CONNECT_TIMEOUT  seconds to connect upstream (default 5)
    GATEWAY_READ_TIMEOUT     seconds without a byte from upstream (default 120; Dify pings every 10 s)
    GATEWAY_MAX_BODY_MB      largest request body accepted (default 110: Dify's video limit plus room)
    GATEWAY_BREAKER_FAILURES consecutive upstream failures that open the breaker (default 5)
    GATEWAY_BREAKER_RECOVERY seconds the breaker stays open before a probe (default 30)
    GATEWAY_MAX_CONNECTIONS  upstream connection pool size (default 1000)
    OTEL_EXPORTER_OTLP_ENDPOINT  send traces over OTLP/HTTP there; unset = tracing off
    OTEL_SERVICE_NAME        service name on the traces (default dify-gateway)
"""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DIFY_CLOUD_URL = "https://api.dify.ai/v1"
DEMO_CALLER_KEY = "gw-demo-key"  # what `make run` uses when GATEWAY_API_KEYS is unset; documented in README


class ConfigError(ValueError):
    """The gateway cannot start with this configuration; the message says what to set."""


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller allowed through the gateway. `name` goes into logs and metric labels; `key` never does."""

    name: str
    key: SecretStr


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_file=None)

    dify_api_base: str = DIFY_CLOUD_URL
    dify_api_key: SecretStr = SecretStr("")
    gateway_api_keys: SecretStr = SecretStr("")
    gateway_rate_limit: float = 10.0
    gateway_rate_burst: int = 20
    gateway_cors_origins: str = ""
    gateway_connect_timeout: float = 5.0
    gateway_read_timeout: float = 120.0
    gateway_max_body_mb: float = 110.0
    gateway_breaker_failures: int = 5
    gateway_breaker_recovery: float = 30.0
    gateway_max_connections: int = 1000
    otel_exporter_otlp_endpoint: str = ""
    otel_service_name: str = "dify-gateway"

    @field_validator("dify_api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        url = (value or "").strip().rstrip("/") or DIFY_CLOUD_URL
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"DIFY_API_BASE must start with http:// or https://, got {url!r}")
        return url if url.endswith("/v1") else f"{url}/v1"

    @property
    def callers(self) -> list[Caller]:
        return parse_callers(self.gateway_api_keys.get_secret_value())

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.gateway_cors_origins.split(",") if o.strip()]

    @property
    def max_body_bytes(self) -> int:
        return int(self.gateway_max_body_mb * 1024 * 1024)

    def check(self) -> GatewaySettings:
        """Raise ConfigError naming what is missing; return self so `GatewaySettings().check()` reads well."""
        if not self.dify_api_key.get_secret_value().strip():
            raise ConfigError("DIFY_API_KEY is not set: the gateway needs the upstream Dify app key (app-...).")
        if not self.callers:
            raise ConfigError(
                "GATEWAY_API_KEYS is not set: give the keys callers must send (comma-separated, `name:key` to name one), "
                f"e.g. GATEWAY_API_KEYS=website:{DEMO_CALLER_KEY}."
            )
        names = [c.name for c in self.callers]
        if len(set(names)) != len(names):
            raise ConfigError("GATEWAY_API_KEYS names two callers alike: give each `name:key` a distinct name.")
        return self


def parse_callers(raw: str) -> list[Caller]:
    """`website:gw-abc,gw-def` -> [Caller("website", ...), Caller("caller-2", ...)]."""
    callers = []
    for i, item in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not item:
            continue
        name, sep, key = item.partition(":")
        if not sep:
            name, key = f"caller-{i}", name
        name, key = name.strip(), key.strip()
        if key:
            callers.append(Caller(name or f"caller-{i}", SecretStr(key)))
    return callers
