"""Texts to the project's number from anyone who is not an operator: a partner's report or a
stranger's message becomes a case (or more words on the sender's open one), answered once.

Safe contact (design §5): a phone that texts the line may be in an exploiter's hands, so a
sender who is not a registered partner gets a neutral reply — no project name, no word about
trafficking — and at most a few replies a day, whatever it sends.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import audit
from core.claims import Outcome, send_once
from core.models import User
from core.provinces import lookup_province
from core.telephony import Telephony
from intake.models import InboundText, Partner
from intake.partners import partner_for_phone
from intake.services import BroughtBy, OpenedCase, open_case
from intake.validation import MAX_SUMMARY, CaseFields
from oncall.notifications import status_callback_url
from routing import alerts
from routing.lifecycle import record_event
from routing.models import Case, CaseEventKind, CaseStatus, Channel, Urgency
from routing.places import (
    MatchKind,
    ProvinceResolution,
    ProvinceSource,
    resolve_municipality,
    resolve_province,
)

log = logging.getLogger(__name__)

# Texts from one number this close together are one conversation: one case, one reply.
THREAD = timedelta(minutes=30)
DAY = timedelta(hours=24)
# A stranger's number opens at most this many cases a day (later texts join its latest open
# case) and gets at most this many replies: a flood or an auto-responder loop stays small.
STRANGER_CASES_PER_DAY = 3
STRANGER_REPLIES_PER_DAY = 3
ANONYMOUS = "anonymous"
_TRIAGED = (ProvinceSource.UNRESOLVED.value, ProvinceSource.OUT_OF_AREA.value)
OPEN_STATUSES = (
    CaseStatus.NEW,
    CaseStatus.DISPATCHED,
    CaseStatus.ACCEPTED,
    CaseStatus.IN_CONTACT,
)


@dataclass(frozen=True)
class TextReceived:
    reference: str
    opened: OpenedCase | None  # None: the text joined the sender's open case
    reply: str | None  # what to text back (None: nothing)
    # The inbound text that joined a case someone accepted: its taker must hear of it, because
    # escalation has stopped and nobody else will (`tell_the_taker`, after the commit).
    taker_to_tell: int | None = None


def receive_text(
    session: Session,
    *,
    sender: str | None,
    raw_from: str = "",
    body: str,
    text: str,
    served: Collection[str],
    pepper: str,
    now: datetime,
) -> TextReceived:
    """Open a case for a text, or add it to the open case its sender texted about in the last
    half hour (a stranger past its daily share of cases: to its latest open one).

    `sender` is the E.164 number, None when Twilio's `From` (`raw_from`) is no phone number
    (an alphanumeric sender ID): such texts still thread by `raw_from` but get no reply.
    `body` is the text as received (kept encrypted until the retention job empties it),
    `text` the same without control characters (the case's summary). The province comes from
    the partner's registry, else from a province or comune the text names (only when it names
    exactly one), else the sender's landline area code; otherwise the coordinators triage it.
    """
    thread = _thread(sender, raw_from, pepper)
    partner = partner_for_phone(session, sender)
    joined = _case_to_join(session, thread, partner, now) if thread != ANONYMOUS else None
    if joined is not None:
        _add_to_case(session, joined, text, now)
        stored = _store(session, joined.id, thread, partner, body, replied=False, now=now)
        return TextReceived(
            reference=joined.reference,
            opened=None,
            reply=None,
            taker_to_tell=stored.id if joined.accepted_by_id is not None else None,
        )

    fields = CaseFields(
        resolution=_resolution(partner, text, sender, served),
        caller_phone=sender,
        urgency=Urgency.URGENT,
        reporter_type=partner.kind if partner is not None else None,
        summary=text or None,
    )
    actor = f"partner:{partner.id}" if partner is not None else "sms"
    opened = open_case(
        session, channel=Channel.SMS, brought_by=BroughtBy(actor=actor), fields=fields, now=now
    )
    may_reply = sender is not None and (
        partner is not None or _replies_today(session, thread, now) < STRANGER_REPLIES_PER_DAY
    )
    _store(session, opened.case_id, thread, partner, body, replied=may_reply, now=now)
    if not may_reply:
        log.info("case %s opened by SMS; no reply (no number, or replies used)", opened.reference)
        return TextReceived(reference=opened.reference, opened=opened, reply=None)
    english = looks_english(text)
    if partner is None:
        reply = "Message received, ref. {ref}" if english else "Messaggio ricevuto, rif. {ref}"
    else:
        routed = opened.province_source not in _TRIAGED
        reply = _partner_reply(english, opened.province if routed else None)
    return TextReceived(
        reference=opened.reference, opened=opened, reply=reply.format(ref=opened.reference)
    )


def _thread(sender: str | None, raw_from: str, pepper: str) -> str:
    """Whom a text's thread belongs to: the number, else whatever `From` said, else nobody."""
    if sender is not None:
        return sender_digest(sender, pepper)
    cleaned = raw_from.strip()[:64]
    return sender_digest("from:" + cleaned, pepper) if cleaned else ANONYMOUS


def sender_digest(sender: str, pepper: str) -> str:
    """The sender as Ali remembers it: a keyed hash, never the number in clear."""
    return hmac.new(pepper.encode(), sender.encode(), hashlib.sha256).hexdigest()[:32]


def _case_to_join(
    session: Session, thread: str, partner: Partner | None, now: datetime
) -> Case | None:
    """The open case this text continues: the one of the sender's text in the last half hour,
    or, for a stranger who has opened its day's share of cases, its latest open one."""
    latest = session.execute(
        select(InboundText.received_at, Case)
        .join(Case, Case.id == InboundText.case_id)
        .where(InboundText.sender == thread, InboundText.received_at > now - DAY)
        .order_by(InboundText.received_at.desc(), InboundText.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    received_at, case = latest
    if case.status not in OPEN_STATUSES:
        return None  # a closed case is read by nobody: a new one reaches a human
    if received_at > now - THREAD:
        return case
    if partner is None and _cases_today(session, thread, now) >= STRANGER_CASES_PER_DAY:
        return case
    return None


def _cases_today(session: Session, thread: str, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count(func.distinct(InboundText.case_id))).where(
                InboundText.sender == thread, InboundText.received_at > now - DAY
            )
        )
        or 0
    )


def _replies_today(session: Session, thread: str, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                InboundText.sender == thread,
                InboundText.received_at > now - DAY,
                InboundText.replied.is_(True),
            )
        )
        or 0
    )


def _add_to_case(session: Session, case: Case, text: str, now: datetime) -> None:
    """More words on the case: its summary grows, its timeline says so; no new alert."""
    if text:
        joined = "\n".join(part for part in (case.summary, text) if part)
        case.summary = joined[-MAX_SUMMARY:]
    record_event(
        session,
        case_id=case.id,
        kind=CaseEventKind.NOTE,
        actor="sms",
        now=now,
        data={"channel": Channel.SMS.value, "more_text": bool(text)},
    )
    audit.record(
        session,
        now=now,
        action="update",
        object_type="case",
        object_id=case.id,
        actor="sms",
        fields=["summary"],
    )


def _store(
    session: Session,
    case_id: int,
    thread: str,
    partner: Partner | None,
    body: str,
    *,
    replied: bool,
    now: datetime,
) -> InboundText:
    stored = InboundText(
        case_id=case_id,
        sender=thread,
        partner_id=partner.id if partner is not None else None,
        body=body,  # as sent (encrypted: even a NUL byte is safe in the ciphertext)
        received_at=now,
        replied=replied,
    )
    session.add(stored)
    session.flush()
    return stored


def tell_the_taker(
    session: Session, telephony: Telephony, inbound_text_id: int, now: datetime
) -> Outcome | None:
    """Text the operator who accepted the case an inbound text joined: a reference and a
    link, once per text (`send_once` COMMITS). None when there is nobody to tell."""
    found = session.execute(
        select(Case.reference, Case.accepted_by_id)
        .join(InboundText, InboundText.case_id == Case.id)
        .where(InboundText.id == inbound_text_id)
    ).first()
    if found is None or found.accepted_by_id is None:
        return None
    user = session.get(User, found.accepted_by_id)
    if user is None or not user.can_be_paged or user.phone is None:
        log.warning("case %s: a new text, and its taker cannot be texted", found.reference)
        return None
    to, body = user.phone, alerts.new_text_sms(user, reference=found.reference)
    return send_once(
        session,
        key=f"case_new_text:{inbound_text_id}",
        kind="case_new_text",
        user_id=user.id,
        now=now,
        send=lambda: telephony.send_sms(to=to, body=body, status_callback=status_callback_url()),
    )


def _partner_reply(english: bool, province: str | None) -> str:
    """A registered partner's reply: what happens next, and how to add details."""
    if english:
        who = f"The on-call operator for {province} has" if province else "The coordinators have"
        return (
            f"Report received, ref. {{ref}}. {who} been alerted. "
            "Text again within 30 minutes to add details."
        )
    who = (
        f"Il reperibile della provincia {province} è stato avvisato"
        if province
        else "Il coordinamento è stato avvisato"
    )
    return (
        f"Segnalazione ricevuta, rif. {{ref}}. {who}. "
        "Per aggiungere dettagli scrivete entro 30 minuti."
    )


# --- what a text says --------------------------------------------------------------------------

# A place is named after a preposition ("sono a Chiari", "stazione di Lodi", "near Cremona");
# a comune named like an everyday word is never read as a place on its own.
_BEFORE_PLACE = frozenset(
    {
        "a", "ad", "in", "di", "da", "presso", "vicino", "verso", "zona", "provincia", "comune",
        "al", "alla", "allo", "del", "della", "dal", "dalla", "nel", "nella",
        "at", "near", "from", "to", "of",
    }
)  # fmt: skip
_COMMON_WORDS = frozenset(
    {"ora", "vita", "calcio", "nave", "ponte", "prato", "rosa", "sale", "paese", "scala", "mele",
     "noci", "ala", "bra", "cene", "pace", "lama", "loro", "fara", "massa", "casa", "carro"}
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_SIGLA_IN_BRACKETS = re.compile(r"\(\s*([A-Za-z]{2})\s*\)")
_LONGEST_NAME = 5  # words: "San Giorgio di Nogaro", "Monza e della Brianza"


@dataclass(frozen=True)
class PlaceInText:
    sigla: str
    source: ProvinceSource  # explicit (a province) or municipality (a comune)


def place_in_text(text: str) -> PlaceInText | None:
    """The one province a text names (a province, a comune, or a sigla in brackets), or None
    when it names none, several, or a comune shared by two provinces (never guess)."""
    found: set[PlaceInText] = set()
    ambiguous = False
    for match in _SIGLA_IN_BRACKETS.finditer(text):
        province = lookup_province(match.group(1))
        if province is not None:
            found.add(PlaceInText(province.sigla, ProvinceSource.EXPLICIT))
    words = _WORD.findall(text[:MAX_SUMMARY])
    for start in range(1, len(words)):
        if words[start - 1].lower() not in _BEFORE_PLACE:
            continue
        for length in range(min(_LONGEST_NAME, len(words) - start), 0, -1):
            phrase = " ".join(words[start : start + length])
            if length == 1 and (phrase.lower() in _COMMON_WORDS or len(phrase) < 3):
                continue
            comune = resolve_municipality(phrase)
            if comune.kind is MatchKind.AMBIGUOUS:
                ambiguous = True
                break
            if comune.sigla is not None:
                found.add(PlaceInText(comune.sigla, ProvinceSource.MUNICIPALITY))
                break
            province = lookup_province(phrase) if len(phrase) > 2 else None
            if province is not None:
                found.add(PlaceInText(province.sigla, ProvinceSource.EXPLICIT))
                break
    if ambiguous or len({place.sigla for place in found}) != 1:
        return None
    # A province named outright wins over the same province found through a comune.
    return min(found, key=lambda place: place.source != ProvinceSource.EXPLICIT)


def _resolution(
    partner: Partner | None, text: str, sender: str | None, served: Collection[str]
) -> ProvinceResolution:
    """The partner's province, else the place the text names, else the landline's area code,
    else unresolved (the coordinators triage it)."""
    if partner is not None and partner.province:
        return resolve_province(served=served, partner_province=partner.province)
    place = place_in_text(text)
    if place is not None:
        served_siglas = {sigla.upper() for sigla in served}
        source = place.source if place.sigla in served_siglas else ProvinceSource.OUT_OF_AREA
        return ProvinceResolution(place.sigla, source)
    return resolve_province(served=served, caller_phone=sender)


_ENGLISH = frozenset(
    {"i", "am", "im", "i'm", "help", "please", "the", "is", "are", "my", "we", "you", "need",
     "hello", "hi", "this", "police", "report", "woman", "girl", "where", "and", "with", "she",
     "he", "they", "have", "not", "can", "at", "there", "here", "want", "go"}
)  # fmt: skip
_ITALIAN = frozenset(
    {"sono", "aiuto", "il", "la", "di", "che", "per", "non", "mi", "ho", "una", "un", "siamo",
     "della", "ciao", "buongiorno", "buonasera", "grazie", "segnalazione", "ragazza", "donna",
     "dove", "qui", "voglio", "lei", "lui", "siete", "è", "e", "con", "al", "alla", "stazione"}
)  # fmt: skip


def looks_english(text: str) -> bool:
    """English when the text has more common English words than Italian ones; Italian is the
    default (a reply in the wrong language still carries the reference)."""
    words = [word.lower().replace("’", "'") for word in _WORD.findall(text[:MAX_SUMMARY])]
    english = sum(word in _ENGLISH for word in words)
    italian = sum(word in _ITALIAN for word in words)
    return english > italian


# --- retention -----------------------------------------------------------------------------------


def purge_raw_texts(
    session: Session, *, now: datetime, retention_days: int, dry_run: bool = False
) -> int:
    """Empty the raw body of texts older than the retention period; returns how many
    (with `dry_run`, how many it would empty, changing nothing)."""
    cutoff = now - timedelta(days=retention_days)
    if dry_run:
        return (
            session.scalar(
                select(func.count()).where(
                    InboundText.received_at < cutoff, InboundText.purged_at.is_(None)
                )
            )
            or 0
        )
    result = session.execute(
        update(InboundText)
        .where(InboundText.received_at < cutoff, InboundText.purged_at.is_(None))
        .values(body=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    purged: int = result.rowcount  # type: ignore[attr-defined]
    if purged:
        audit.record(
            session,
            now=now,
            action="delete",
            object_type="inbound_text",
            fields=["body"],
            detail={"count": purged, "older_than_days": retention_days},
        )
        log.info("raw texts: %d emptied after %d days", purged, retention_days)
    return purged
