"""What a delivery's body says: the standard JSON envelope, or a Slack-compatible message.

Standard (``application/json``): ``{"type": "<kind>", "timestamp": "...Z", "id": "<key>",
"data": {...}}`` (the Standard Webhooks payload shape). Slack: an incoming-webhook
message, ``{"text": ..., "blocks": [...]}``, which Slack, Mattermost and Rocket.Chat
incoming webhooks accept: a headline, the facts as fields, and links back to the graph's
plot and table URLs when the server knows its public address.
"""

from __future__ import annotations

import json
from typing import Any, Final

from dsa110.db.enums import AlertType

FORMATS: Final = ("standard", "slack")

HEADLINES: Final = {
    "ese_candidate": ":satellite_antenna: New ESE candidate",
    "ese_confirmed": ":rotating_light: ESE candidate confirmed",
    "ese_rejected": ":heavy_multiplication_x: ESE candidate rejected",
    "job_failed": ":x: Pipeline job failed",
    "streaming_down": ":warning: Streaming looks down",
    "test": ":white_check_mark: Test delivery",
}


def standard_body(kind: str, key: str, occurred_at: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "id": key, "timestamp": occurred_at, "data": data}


def _facts(kind: str, data: dict[str, Any]) -> list[str]:
    if kind in set(AlertType):
        return [
            f"*Source*\n{data.get('source_id')}",
            f"*Significance*\n{data.get('significance', 0):.1f} sigma",
            f"*Depth*\n{data.get('depth', 0):.0%}",
            f"*Window*\nMJD {data.get('start_mjd', 0):.1f}-{data.get('end_mjd', 0):.1f}",
            f"*Severity*\n{data.get('severity')}",
            f"*Candidate*\n{data.get('candidate_id')}",
        ]
    if kind == "job_failed":
        return [
            f"*Job*\n{data.get('job_id')} ({data.get('job_type')})",
            f"*Finished*\n{data.get('finished_at')}",
        ]
    if kind == "streaming_down":
        return [
            f"*Last group*\n{data.get('last_group_id')}",
            f"*Silent for*\n{data.get('silent_minutes', 0):.0f} min",
        ]
    return []


def slack_body(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    headline = HEADLINES.get(kind, kind)
    message = str(data.get("message") or data.get("error") or "")[:2900]
    text = f"{headline}: {message}" if message else headline
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}}]
    if message:
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": message}})
    facts = _facts(kind, data)
    if facts:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts[:10]]})
    links = [f"<{url}|{label}>" for label, url in (data.get("links") or {}).items() if url.startswith("http")]
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]})
    return {"text": text, "blocks": blocks}


def render(fmt: str, kind: str, key: str, occurred_at: str, data: dict[str, Any]) -> bytes:
    body = slack_body(kind, data) if fmt == "slack" else standard_body(kind, key, occurred_at, data)
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()
