"""Dify version profiles: where the Service API of one release differs from another.

Only version-specific behaviour lives here; shapes common to both releases are in the routes and
generation scripts. 1.12 is taken from raw captures of a real Dify 1.12.1 (../shared/dify-captures/);
1.13 is the contract's newer behaviour (opening ping, `/workflow/:id/events`, human input, ...).
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION_HEADER = "x-sim-dify-version"  # per-request override of --dify-version (tests)


@dataclass(frozen=True)
class Profile:
    version: str
    server_version: str  # the X-Version header and the welcome's server_version
    opening_ping: bool  # workflow/chatflow streams open with `event: ping` (relayed from Redis since 1.13)
    message_end_last: bool  # chatflow ends workflow_finished then message_end (1.12) or the reverse
    delete_unknown_conversation_204: bool  # 1.12 answers 204 for a conversation that is not there
    html_404: bool  # unknown routes: werkzeug's HTML page (1.12) or the JSON envelope
    conversations_need_user: bool  # GET /conversations without `user`: an empty list (1.12)
    run_detail_json_strings: bool  # GET /workflows/run/:id: `outputs` as a JSON string too (1.12)
    unknown_run_null_record: bool  # GET /workflows/run/<unknown>: 200 with every field null (1.12)
    workflow_events: bool  # GET /workflow/:id/events exists (>= 1.13)
    newer_fields: bool  # fields 1.12 does not send: form hint/placeholder, workflow_started.reason,
    #                     history token/price fields and extra_contents, file `reference`


PROFILES: dict[str, Profile] = {
    "1.12": Profile(
        version="1.12", server_version="1.12.0", opening_ping=False, message_end_last=True,
        delete_unknown_conversation_204=True, html_404=True, conversations_need_user=True,
        run_detail_json_strings=True, unknown_run_null_record=True, workflow_events=False, newer_fields=False,
    ),
    "1.13": Profile(
        version="1.13", server_version="1.13.3", opening_ping=True, message_end_last=False,
        delete_unknown_conversation_204=False, html_404=False, conversations_need_user=False,
        run_detail_json_strings=False, unknown_run_null_record=False, workflow_events=True, newer_fields=True,
    ),
}
DEFAULT_VERSION = "1.13"  # the newest


class UnknownVersion(ValueError):
    pass


def profile_named(version: str) -> Profile:
    key = version.strip()
    if key not in PROFILES:
        raise UnknownVersion(f"unknown Dify version {version!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[key]
