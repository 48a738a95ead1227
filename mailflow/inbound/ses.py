"""Amazon SES notifications mailed by SNS: a bounce, a complaint or a delivery, as JSON.

A consultant who sends through SES may subscribe an address to its notifications; they arrive
from no-reply@sns.amazonaws.com with the JSON of the event as the body.
"""

from __future__ import annotations

import json

from mailflow.inbound import classify
from mailflow.inbound.bounces import DELAYED, DELIVERED, FAILED, REPORTED, Recipient

_SNS_SENDER = "@sns.amazonaws.com"
_KINDS = {"bounce": classify.BOUNCE, "complaint": classify.REPORT, "delivery": classify.DELIVERED}


def _event(text: str) -> dict | None:
    start = text.find("{")
    if start < 0:
        return None
    try:
        event, _ = json.JSONDecoder(strict=False).raw_decode(text[start:])
    except ValueError:
        return None
    if isinstance(event, dict) and isinstance(event.get("Message"), str):
        try:  # an SNS envelope around the SES event
            event = json.loads(event["Message"], strict=False)
        except ValueError:
            return None
    return event if isinstance(event, dict) else None


def _original_id(event: dict) -> str | None:
    mail = event.get("mail") or {}
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value"))
    value = (mail.get("commonHeaders") or {}).get("messageId")
    return str(value) if value else None


def parse_notification(from_addr: str | None, text: str) -> tuple[str, list[Recipient],
                                                                  str | None] | None:
    """(kind, recipients, original Message-ID) of an SES notification, or None if it is not one."""
    if not from_addr or not from_addr.endswith(_SNS_SENDER):
        return None
    event = _event(text)
    kind = _KINDS.get(str((event or {}).get("notificationType", "")).lower())
    if event is None or kind is None:
        return None
    recipients: list[Recipient] = []
    if kind == classify.BOUNCE:
        bounce = event.get("bounce") or {}
        transient = str(bounce.get("bounceType", "")).lower() == "transient"
        for r in bounce.get("bouncedRecipients") or []:
            if isinstance(r, dict) and r.get("emailAddress"):
                recipients.append(Recipient(
                    str(r["emailAddress"]).lower(), r.get("status"),
                    DELAYED if transient else FAILED, r.get("diagnosticCode")))
    elif kind == classify.REPORT:
        for r in (event.get("complaint") or {}).get("complainedRecipients") or []:
            if isinstance(r, dict) and r.get("emailAddress"):
                recipients.append(Recipient(str(r["emailAddress"]).lower(), None, REPORTED))
    else:
        delivery = event.get("delivery") or {}
        for address in delivery.get("recipients") or []:
            recipients.append(Recipient(str(address).lower(), None, DELIVERED,
                                        delivery.get("smtpResponse")))
    return kind, recipients, _original_id(event)
