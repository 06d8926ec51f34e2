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
    GATEWAY_MAX_BODY_MB      largest request body accepted (default 110: Dify's video limit plus room); counted
                             while the body streams in, so a chunked body is refused at the limit, not after
    GATEWAY_MAX_HEADER_KB    largest request line plus headers, in KiB (default 32: nginx's and gunicorn's scale)
    GATEWAY_MAX_HEADERS      most header fields in a request (default 100, gunicorn's limit)
    GATEWAY_HEADER_TIMEOUT   seconds a connection gets to send a request's line and headers (default 10)
    GATEWAY_BODY_TIMEOUT     seconds a request gets to send its whole body (default 120)
    GATEWAY_MAX_CLIENT_CONNECTIONS  open caller connections past which new requests get uvicorn's 503 (its
                             limit_concurrency; default 0: no limit, the head and body deadlines bound slow ones)
    GATEWAY_AUTH_FAILURES    failed-auth attempts allowed per client address in GATEWAY_AUTH_WINDOW seconds
                             before its requests get 429 (default 20 in 60; 0 turns this off)
    GATEWAY_TRUSTED_PROXIES  addresses or networks (CIDR) of proxies in front whose X-Forwarded-For / Forwarded / X-Real-IP are
                             believed and passed upstream, comma-separated (default none: those headers are
                             dropped and the client address is the socket's peer)
    GATEWAY_READY_CACHE      seconds /ready trusts its last check of the Dify key (GET /info) (default 5)
    GATEWAY_ISOLATE_CALLERS  keep callers apart: each caller's Dify `user` values get a namespace of their own
                             (`<caller>@gw:<user>` upstream, stripped from answers) (default true)
    GATEWAY_METRICS_KEY      when set, /metrics answers only `Authorization: Bearer <this key>` (default unset)
    GATEWAY_BREAKER_FAILURES consecutive upstream failures that open the breaker (default 5)
    GATEWAY_BREAKER_RECOVERY seconds the breaker stays open before a probe (default 30)
    GATEWAY_MAX_CONNECTIONS  upstream connection pool size (default 1000)
    OTEL_EXPORTER_OTLP_ENDPOINT  send traces over OTLP/HTTP there; unset = tracing off
    OTEL_SERVICE_NAME        service name on the traces (default dify-gateway)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DIFY_CLOUD_URL = "https://api.dify.ai/v1"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
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
    gateway_max_header_kb: float = 32.0
    gateway_max_headers: int = 100
    gateway_header_timeout: float = 10.0
    gateway_body_timeout: float = 120.0
    gateway_max_client_connections: int = 0
    gateway_auth_failures: int = 20
    gateway_auth_window: float = 60.0
    gateway_trusted_proxies: str = ""
    gateway_ready_cache: float = 5.0
    gateway_isolate_callers: bool = True
    gateway_metrics_key: SecretStr = SecretStr("")
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

    @property
    def max_header_bytes(self) -> int:
        return int(self.gateway_max_header_kb * 1024)

    @property
    def trusted_proxies(self) -> list[str]:
        return [a.strip() for a in self.gateway_trusted_proxies.split(",") if a.strip()]

    def check(self) -> GatewaySettings:
        """Raise ConfigError naming what is missing; return self so `GatewaySettings().check()` reads well."""
        if not self.dify_api_key.get_secret_value().strip():
            raise ConfigError("DIFY_API_KEY is not set: the gateway needs the upstream Dify app key (app-...).")
        if not self.callers:
            raise ConfigError(
                "GATEWAY_API_KEYS is not set: give the keys callers must send (comma-separated, `name:key` to name one), "
                f"e.g. GATEWAY_API_KEYS=website:{DEMO_CALLER_KEY}."
            )
        for name in ("gateway_max_header_kb", "gateway_header_timeout", "gateway_body_timeout", "gateway_max_body_mb"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.upper()} must be a positive number, got {getattr(self, name)}.")
        if self.gateway_max_headers < 1:
            raise ConfigError(f"GATEWAY_MAX_HEADERS must be at least 1, got {self.gateway_max_headers}.")
        names = [c.name for c in self.callers]
        if len(set(names)) != len(names):
            raise ConfigError("GATEWAY_API_KEYS names two callers alike: give each `name:key` a distinct name.")
        odd = [n for n in names if not _NAME.fullmatch(n)]
        if odd:  # names go into metric labels and, with isolation, into Dify user ids
            raise ConfigError(f"GATEWAY_API_KEYS: caller names may hold letters, digits, '.', '_' and '-' only "
                              f"(at most 64), got {odd[0]!r}.")
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
