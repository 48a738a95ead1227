"""Acting on the consultant's replies to a digest, found while polling (issue 13).

The checks and the meaning of each line are decided in engine/digest_commands.py; this module
applies them through the same actions as the CLI and queues a short confirmation, which
desk/digest.py sends to the consultant (never to whoever wrote the reply).
"""

from __future__ import annotations

from mailflow.desk.actions import approve, reject, set_status
from mailflow.engine.digest import KEEP_AFTER_VALID, is_stale
from mailflow.engine.digest_commands import (
    decide,
    digest_message_ids,
    find_digest,
    looks_like_digest_reply,
    parse_commands,
)
from mailflow.engine.schedule import send_time_for
from mailflow.engine.tick import Tick
from mailflow.errors import MailflowError
from mailflow.inbound.authresults import passed_dkim_or_dmarc
from mailflow.inbound.message import Inbound
from mailflow.store import now_iso

OWN_IDS = ("<mailflow-digest.", "<mailflow-confirm.")


def trusted_sender_check(raw: bytes, authserv_id: str | None, sender: str
                         ) -> tuple[bool, str]:
    """Whether the consultant's server vouches for the reply (aligned DKIM or DMARC pass).

    One small seam: the trust rules of the edges lane can replace this function.
    """
    return passed_dkim_or_dmarc(raw, authserv_id, sender.rpartition("@")[2] or None)


def handle_digest_reply(tick: Tick, inbound: Inbound, raw: bytes, source: str) -> bool:
    """Act on a reply to a digest; True when the message was one (it is then not a client's)."""
    refs = tuple(inbound.in_reply_to) + tuple(inbound.references)
    if (inbound.message_id or "").startswith(OWN_IDS):
        return True  # our own digest or confirmation, seen in the consultant's inbox
    from mailflow.desk.digest import consultant_address
    consultant = consultant_address(tick.loaded).lower()
    sender = (inbound.from_addr or "").lower()
    if not looks_like_digest_reply(refs, tuple(inbound.to), inbound.subject) and not (
            # the consultant writing commands without replying to the digest: told why not
            sender == consultant and tick.state.digests
            and parse_commands(inbound.text or "").commands and not _answers_ours(tick, refs)):
        return False
    rid = f"reply:{inbound.message_id or source}"
    if rid in tick.state.digests:
        return True  # already acted on (seen again after a UIDVALIDITY change)
    if inbound.kind in ("auto_reply", "bounce"):
        return True  # an out-of-office answering the digest: nothing to act on or confirm
    loaded = tick.loaded
    digest, why = find_digest(tick.state.digests, refs, tuple(inbound.to))
    before = tick.state.meta.get("digests_before")
    if digest is None and before and digest_message_ids(refs):
        if inbound.date and now_iso(inbound.date) < before:
            return True  # a reply from before the digests forgotten, seen again: long done
        kept = loaded.config.digest.valid_for_days + KEEP_AFTER_VALID.days
        why = (f"it answers no digest mailflow still keeps (digests are kept {kept} days, "
               f"and a reply counts only within {loaded.config.digest.valid_for_days} days "
               "of its digest)")
    if digest is not None and sender != digest.get("to", consultant).lower():
        why = f"it came from {sender or 'an unknown sender'}, not from {digest.get('to')}"
    if digest is not None and not why:
        imap = loaded.config.imap
        ok, auth_why = trusted_sender_check(raw, imap.authserv_id if imap else None, sender)
        if not ok:
            why = f"it did not pass authentication: {auth_why}"
    if digest is not None and not why and is_stale(digest, tick.now, loaded.config.digest):
        why = (f"the digest of {digest['sent_at']} is older than "
               f"{loaded.config.digest.valid_for_days} days")
    record = {"kind": "reply", "message_id": inbound.message_id, "source": source,
              "from": sender, "received_at": now_iso(tick.now),
              "digest": digest["id"] if digest else None,
              "digest_message_id": digest["message_id"] if digest else None,
              # a confirmation is recognisably mailflow's, whatever the reply's subject said
              "digest_subject": digest.get("subject") if digest else
              f"[mailflow digest] {inbound.subject.removeprefix('Re: ')}"}
    if why:
        record.update(refused=why, confirmation=(
            f"Nothing was done with the reply from {sender or '?'} "
            f"(\"{inbound.subject}\"): {why}.\nNothing was approved. Use the CLI, or reply to "
            "the latest digest from your own address."))
        tick.report.problems.append(f"digest reply from {sender or '?'} refused: {why}")
    else:
        record.update(_act(tick, inbound, digest, sender))
    tick.w.record("digest.reply", at=tick.now, digests={"key": rid, "set": record})
    return True


def _answers_ours(tick: Tick, refs: tuple[str, ...]) -> bool:
    """Whether a message answers an email mailflow sent to a client (then it is a reply)."""
    wanted = set(refs)
    return bool(wanted) and any(m.get("message_id") in wanted
                                for m in tick.state.messages.values())


def _act(tick: Tick, inbound: Inbound, digest: dict, sender: str) -> dict:
    parsed = parse_commands(inbound.text or "")
    decision = decide(parsed, digest, tick.state)
    via = {"channel": "email", "from": sender, "digest": digest["id"],
           "reply": inbound.message_id}
    who = f"{sender} (by email)"
    done, refused = [], list(decision.refused)
    for n, key in decision.approve:
        msg = tick.state.messages[key]
        try:
            approve(tick.w, msg, who, tick.now, via=via)
        except MailflowError as err:
            refused.append(f"{n}: {err}")
            continue
        done.append(f"Approved {n} ({_label(tick, msg)}): goes out {_when(tick, msg)}")
    for n, key, reason in decision.reject:
        msg = tick.state.messages[key]
        try:
            reject(tick.w, msg, who, reason, tick.now)
        except MailflowError as err:
            refused.append(f"{n}: {err}")
            continue
        done.append(f"Rejected {n} ({_label(tick, msg)}): {reason}")
    for n, rid in decision.handled:
        reply = tick.state.replies[rid]
        tick.w.record("reply.handled", at=tick.now, engagement=reply.get("engagement"),
                      replies={"key": rid, "set": {"handled": now_iso(tick.now),
                                                   "handled_by": who, "handled_via": via}})
        done.append(f"Handled {n} (reply {rid} from {reply.get('from')})")
    for verb, eids in (("paused", decision.pause), ("active", decision.resume)):
        for eid in eids:
            set_status(tick.w, eid, verb, tick.now)
            done.append(f"{'Paused' if verb == 'paused' else 'Resumed'} {eid}")
    lines = done or ["Nothing was done."]
    if refused:
        lines += ["", "Not done:"] + [f"  {r}" for r in refused]
    if decision.unknown:
        lines += ["", "Lines not understood (nothing was guessed):"]
        lines += [f"  {u}" for u in decision.unknown]
    if refused or decision.unknown:
        tick.report.notes.append(f"digest reply from {sender}: {len(refused)} refused, "
                                 f"{len(decision.unknown)} line(s) not understood")
    return {"done": done, "refused_items": refused, "unknown": decision.unknown,
            "confirmation": "\n".join(lines)}


def _label(tick: Tick, msg: dict) -> str:
    eng = tick.state.engagements.get(msg["engagement"]) or {}
    try:
        name = tick.loaded.sequence_for(eng).stage(msg["stage"]).name
    except (KeyError, MailflowError):
        name = msg["stage"]
    return f"{eng.get('client', msg['engagement'])}, {name}"


def _when(tick: Tick, msg: dict) -> str:
    from mailflow import timing
    when = send_time_for(tick.loaded, tick.state, msg, tick.now)
    eng = tick.state.engagements.get(msg["engagement"]) or {}
    if when is None or not eng:
        return "?"
    return timing.format_local(when, tick.loaded.context_for(eng).zone)
