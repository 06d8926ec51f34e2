"""Check a Dify app before it becomes a target: its /info and /parameters answer with this key.

The Playground's "Add target" form adds nothing that fails here, and says why in the client's words,
except for one hint it corrects: the console adds `/v1` to a base URL given without it, so telling the
user their URL "should end in /v1" would send them after something already done.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from lib.dify import DifyClient, DifyError, RetryPolicy
from lib.settings import Target

from .app_profile import AppProfile, UnsupportedModeError, load_profile


class TargetCheckFailed(ValueError):
    """The app did not answer as a Dify app with this key; the message says what happened and what to do."""


def check_target(target: Target, typed_url: str) -> AppProfile:
    """The app's profile, or TargetCheckFailed. A client of its own, no retries and no circuit breaker: a
    check answers at once and leaves the shared clients' breakers alone."""
    with DifyClient(target.base_url, target.api_key, retry=RetryPolicy(max_attempts=1), breaker=None) as client:
        try:
            return load_profile(client)
        except DifyError as err:
            raise TargetCheckFailed(_sentence(err, target.base_url, typed_url)) from None
        except UnsupportedModeError as err:
            raise TargetCheckFailed(str(err)) from None


def explain(err: DifyError) -> str:
    """The client's sentence, but for the console's gateway refusing a caller key: its 401 reads "A gateway
    key is required" even when a wrong key was sent, and the client's hint is about Dify app keys."""
    if err.status == 401 and "gateway key" in (err.message or "").lower():  # the gateway's 401, whatever its wording
        return ("The gateway did not accept this key: it is not one of its caller keys (GATEWAY_API_KEYS; "
                "`make run` prints its demo key). Through the gateway, use a gateway caller key, not the Dify app's key.")
    return str(err)


def _sentence(err: DifyError, base_url: str, typed_url: str) -> str:
    if err.status == 401:
        return explain(err)
    if "/v1" not in err.hint or _path(typed_url).endswith("/v1"):
        return str(err)
    # The URL typed had no /v1 and the console added it: the client's "should end in /v1" is moot.
    err.hint = (f"The console added /v1 to the URL you gave ({base_url}), and this server has no Dify API there: "
                "check the host and the path in front of /v1 (for Dify Cloud: https://api.dify.ai/v1)")
    return err.sentence()


def _path(url: str) -> str:
    return urlsplit(url.strip()).path.rstrip("/")
