"""Dispatch and escalation: page the on-call chain, step by step, until a human accepts.

How nothing is lost and nothing is sent twice:

* A dispatch is created in the transaction that opens its case, due at once. Firing a step
  writes its pages as `pending` rows and moves `due_at` to the end of the step's wait: the
  timer is a column, so a restarted worker carries on where the last one stopped.
* Due dispatches are claimed with `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite
  has one writer at a time anyway), so two workers never fire the same step; a page is
  unique per (dispatch, step, operator, channel, purpose).
* A page is sent by whoever first moves it from `pending` to `sending` in a committed
  UPDATE, before the request to Twilio (a transaction never stays open across it). A crash
  during that request leaves it `sending`: it is not sent again, because Twilio has no
  idempotency key and the escalation goes on anyway.
* The first pages go out right after the commit that created them (the edge runs
  `deliver` after its response), not at the next tick; the worker's tick sends whatever is
  still pending, which is what a crash between commit and send leaves behind.
* Skips happen at once: a tier with nobody reachable, a call that ends unanswered, busy,
  failed or on a machine, a decline — the step is settled when every person paged in it is
  out of reach, and the next step is due now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, joinedload

from core import audit
from core.config import get_settings
from core.delivery import TERMINAL_FAILURES
from core.models import DeliveryStatus, Role, User, users_with_role
from core.telephony import SMS_OPTED_OUT, Telephony, TelephonyError
from oncall.chain import OnCallChain, coordinators_to_page, on_call_chain
from oncall.notifications import mark_sms_opted_out, tell_sms_opt_outs
from routing import alerts, bundles
from routing.lifecycle import change_status, record_event
from routing.models import (
    Case,
    CaseEventKind,
    CaseStatus,
    Channel,
    Dispatch,
    DispatchState,
    Page,
    PageBundle,
    PageChannel,
    PageOutcome,
    PagePurpose,
    PolicyTarget,
    Urgency,
)
from routing.policies import policy_snapshot, step_of, total_steps

log = logging.getLogger(__name__)

SYSTEM = "system"
PENDING = "pending"
SENDING = "sending"
CANCELED = "canceled"
FAILED = "failed"
# Call statuses after which the call can no longer be ended or redirected.
_CALL_OVER = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
MACHINE = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)
CLAIM_BATCH = 100
BROKEN_RETRY = timedelta(minutes=1)
RETRY_FIRST = timedelta(seconds=5)
RETRY_MAX = timedelta(minutes=1)


def retry_delay(attempts: int) -> timedelta:
    """How long a page (or a bundle) waits after its `attempts`-th retryable failure."""
    delay: timedelta = min(RETRY_FIRST * 2 ** (attempts - 1), RETRY_MAX)
    return delay


# Longer than any request to Twilio can take (the client times out after 10 s).
STUCK_AFTER = timedelta(minutes=2)


@dataclass
class FollowUp:
    """Work for after the commit: dispatches to advance and send, calls to end or redirect."""

    dispatch_ids: set[int] = field(default_factory=set)  # fire what is due, then send
    to_send: set[int] = field(default_factory=set)  # only send what is pending
    calls_to_end: set[str] = field(default_factory=set)
    calls_to_redirect: dict[str, str] = field(default_factory=dict)  # sid → TwiML URL

    def merge(self, other: FollowUp) -> FollowUp:
        self.dispatch_ids |= other.dispatch_ids
        self.to_send |= other.to_send
        self.calls_to_end |= other.calls_to_end
        self.calls_to_redirect |= other.calls_to_redirect
        return self

    def __bool__(self) -> bool:
        return bool(
            self.dispatch_ids or self.to_send or self.calls_to_end or self.calls_to_redirect
        )


# --- starting ----------------------------------------------------------------------------------


def start_dispatch(
    session: Session,
    *,
    case_id: int,
    reference: str,
    rota_province: str | None,
    urgency: Urgency,
    now: datetime,
    chain: OnCallChain | None = None,
    fire_first_step: bool = True,
) -> tuple[Dispatch, int]:
    """The dispatch of a new case, in the transaction that opens it, with its policy copied
    and its first step fired (pages pending; the edge sends them after its commit through
    `routing.followup.after_response`).

    `rota_province` is None for cases that go to the coordinators (unresolved, out of area).
    `fire_first_step` False: someone takes the case in this same transaction (a partner call
    answered, a case entered by hand and taken), so nobody is alerted for nothing; should the
    taking fail, the dispatch is due now and the worker's next tick fires the step.
    Returns the dispatch and how many pages wait to be sent.
    """
    policy = policy_snapshot(session, urgency)
    dispatch = Dispatch(
        case_id=case_id,
        reference=reference,
        province=rota_province,
        urgency=urgency,
        policy=policy,
        steps_fired=0,
        state=DispatchState.OPEN,
        due_at=now,
        created_at=now,
    )
    session.add(dispatch)
    record_event(
        session,
        case_id=case_id,
        kind=CaseEventKind.DISPATCHED,
        actor=SYSTEM,
        now=now,
        data={"urgency": urgency.value, "policy": policy},
    )
    queued = (
        fire_due_steps(session, dispatch, now, chain=chain, fresh=True) if fire_first_step else 0
    )
    session.flush()  # one flush: the dispatch, its events and its pages in batches
    return dispatch, queued


# --- escalation --------------------------------------------------------------------------------


def fire_due_steps(
    session: Session,
    dispatch: Dispatch,
    now: datetime,
    *,
    chain: OnCallChain | None = None,
    fresh: bool = False,
) -> int:
    """Fire every step of `dispatch` that is due at `now`: one normally, several in a row when
    a step finds nobody to page (skipped at once, with an event).

    Who is on call is resolved now, at each step (`chain`: already resolved at `now` by the
    caller; `fresh`: a dispatch just created, with no pages and no decliners yet). Returns
    how many pages it queued.
    """
    total = total_steps(dispatch.policy)
    if chain is None or chain.at != now:
        # A case with no rota province (unresolved, out of area) has no primary or backup:
        # its chain is the coordinators.
        chain = on_call_chain(session, province=dispatch.province or "", at=now)
    declined: set[int] = set() if fresh else _decliners(session, dispatch)
    queued = 0
    while (
        dispatch.state == DispatchState.OPEN
        and dispatch.due_at is not None
        and dispatch.due_at <= now
    ):
        index = dispatch.steps_fired
        if index >= total:
            return queued + _exhaust(session, dispatch, now, fresh=fresh)
        step = step_of(dispatch.policy, index)
        dispatch.steps_fired = index + 1
        recipients = _recipients(session, dispatch, chain, declined, step.targets, now)
        if not recipients:
            dispatch.due_at = now
            continue
        for tier, user in recipients:
            for channel in _channels_for(user, step.channels):
                queued += (
                    _add_page(
                        session,
                        dispatch,
                        user,
                        step=index,
                        purpose=PagePurpose.ALERT,
                        tier=tier,
                        channel=channel,
                        now=now,
                        check=not fresh,
                    )
                    is not None
                )
        _dispatch_event(
            session,
            dispatch,
            CaseEventKind.STEP,
            now,
            {
                "step": index + 1,
                "operator_ids": [user.id for _tier, user in recipients],
                "tiers": sorted({tier for tier, _user in recipients}),
                "channels": [channel.value for channel in step.channels],
                "wait_minutes": step.wait_minutes,
            },
        )
        dispatch.due_at = now + timedelta(minutes=step.wait_minutes)
    return queued


def _channels_for(user: User, channels: Sequence[PageChannel]) -> list[PageChannel]:
    """The step's channels for this person: one who opted out of SMS (STOP) is called
    instead."""
    if user.sms_opted_out_at is None:
        return list(channels)
    return list(dict.fromkeys(PageChannel.VOICE if c == PageChannel.SMS else c for c in channels))


def _decliners(session: Session, dispatch: Dispatch) -> set[int]:
    return set(
        session.scalars(
            select(Page.operator_id).where(
                Page.dispatch_id == dispatch.id, Page.outcome == PageOutcome.DECLINED
            )
        )
    )


def _recipients(  # noqa: PLR0917 -- private, one caller
    session: Session,
    dispatch: Dispatch,
    chain: OnCallChain,
    declined: set[int],
    targets: Sequence[PolicyTarget],
    now: datetime,
) -> list[tuple[str, User]]:
    """(tier, user) to page for a step; decliners of this dispatch left out.

    A case with no rota province (unresolved, out of area) goes to the coordinators at every
    step. A tier with nobody pageable is an event, so the timeline says why it was skipped.
    """
    wanted = list(targets) if dispatch.province is not None else [PolicyTarget.COORDINATORS]
    found: list[tuple[str, User]] = []
    seen: set[int] = set()
    for target in dict.fromkeys(wanted):
        if target == PolicyTarget.COORDINATORS:
            holders, pageable = coordinators_to_page(session, chain, declined=declined)
        else:
            holder = chain.primary if target == PolicyTarget.PRIMARY else chain.backup
            holders = [holder] if holder is not None else []
            pageable = [user for user in holders if user.can_be_paged and user.id not in declined]
        if not pageable:
            _dispatch_event(
                session,
                dispatch,
                CaseEventKind.NOBODY_ON_CALL,
                now,
                {
                    "step": dispatch.steps_fired,
                    "tier": target.value,
                    "reason": _why_nobody(holders, declined),
                },
            )
        for user in pageable:
            if user.id not in seen:
                seen.add(user.id)
                found.append((target.value, user))
    return found


def _why_nobody(holders: Iterable[User], declined: set[int]) -> str:
    holders = list(holders)
    if not holders:
        return "nobody_on_call"
    if all(user.id in declined for user in holders):
        return "declined"
    return "no_verified_phone"


def _add_page(
    session: Session,
    dispatch: Dispatch,
    user: User,
    *,
    step: int,
    purpose: PagePurpose,
    tier: str,
    channel: PageChannel,
    now: datetime,
    check: bool = True,
) -> Page | None:
    """A pending page, unless this very page exists already (one per step, person, channel;
    `check=False` for a dispatch created in this transaction, which has none)."""
    if not user.phone:
        return None
    if channel == PageChannel.SMS and user.sms_opted_out_at is not None:
        return None  # Twilio would refuse it (21610): their pages go by call
    if check:
        session.flush()
        exists = session.scalar(
            select(Page.id).where(
                Page.dispatch_id == dispatch.id,
                Page.step == step,
                Page.operator_id == user.id,
                Page.channel == channel,
                Page.purpose == purpose,
            )
        )
        if exists is not None:
            return None
    page = Page(
        dispatch=dispatch,
        step=step,
        purpose=purpose,
        tier=tier,
        operator_id=user.id,
        channel=channel,
        to=user.phone,
        status=PENDING,
        created_at=now,
        updated_at=now,
    )
    session.add(page)
    return page


def _exhaust(session: Session, dispatch: Dispatch, now: datetime, *, fresh: bool = False) -> int:
    """Every step used up and nobody accepted: the case is unanswered, and every active
    coordinator gets a final alert (SMS and call; they can still accept it)."""
    dispatch.state = DispatchState.EXHAUSTED
    dispatch.due_at = None
    dispatch.exhausted_at = now
    coordinators = [
        user for user in users_with_role(session, Role.COORDINATOR) if user.can_be_paged
    ]
    step = dispatch.steps_fired
    queued = 0
    for user in coordinators:
        for channel in (PageChannel.SMS, PageChannel.VOICE):
            queued += (
                _add_page(
                    session,
                    dispatch,
                    user,
                    step=step,
                    purpose=PagePurpose.UNANSWERED,
                    tier="coordinators",
                    channel=channel,
                    now=now,
                    check=not fresh,
                )
                is not None
            )
    _dispatch_event(
        session,
        dispatch,
        CaseEventKind.UNANSWERED,
        now,
        {"steps": step, "coordinator_ids": [user.id for user in coordinators]},
    )
    log.warning(
        "dispatch %s of case %s unanswered after %s steps", dispatch.id, dispatch.reference, step
    )
    return queued


def claim_due(session: Session, now: datetime, *, only: Iterable[int] = ()) -> list[Dispatch]:
    """Open dispatches whose next step is due, locked for this transaction; rows another
    worker holds are skipped (PostgreSQL), so each step fires once."""
    query = (
        select(Dispatch)
        .where(Dispatch.state == DispatchState.OPEN, Dispatch.due_at <= now)
        .order_by(Dispatch.due_at, Dispatch.id)
        .limit(CLAIM_BATCH)
        .with_for_update(skip_locked=True)
    )
    ids = list(only)
    if ids:
        query = query.where(Dispatch.id.in_(ids))
    return list(session.scalars(query))


# --- sending -----------------------------------------------------------------------------------


def send_pending(
    session: Session, telephony: Telephony, now: datetime, *, only: Iterable[int] = ()
) -> int:
    """Send every pending page due now (of the `only` dispatches, if given); COMMITS.

    The pages are claimed in one committed UPDATE (pending → sending) before any request to
    Twilio; each result is committed as soon as it is known, so a crash part-way leaves at
    most the page in flight unrecorded. A retryable failure (Twilio down, throttling, no
    connection) puts the page back to pending with a growing delay: it is sent when Twilio
    recovers, while the escalation's timer keeps moving. Pages past their operator's hourly
    cap go into a bundle instead (routing.bundles). Returns how many were sent.
    """
    claim = (
        update(Page)
        .where(Page.status == PENDING, or_(Page.retry_at.is_(None), Page.retry_at <= now))
        .values(status=SENDING, updated_at=now)
        .returning(Page.id)
    )
    ids = list(only)
    if ids:
        claim = claim.where(Page.dispatch_id.in_(ids))
    claimed = list(session.scalars(claim))
    if not claimed:
        session.rollback()
        return 0
    batch = list(
        session.scalars(
            select(Page)
            .where(Page.id.in_(claimed))
            .options(joinedload(Page.dispatch), joinedload(Page.operator))
            .order_by(Page.id)
            .execution_options(populate_existing=True)
        )
    )
    channels: dict[int, str] = {
        row.id: row.channel
        for row in session.execute(
            select(Case.id, Case.channel).where(Case.id.in_({p.dispatch.case_id for p in batch}))
        )
    }
    outgoing, bundled = _outgoing(session, batch, channels, now)
    session.commit()  # the claims are durable before Twilio is asked
    sent = 0
    outage = False
    for page_id, to, text in outgoing:
        if outage:
            # Twilio is down, throttling or unreachable: the rest of the batch waits for the
            # next try instead of each spending its own timeout on it (a tick stays short).
            _release(session, page_id, now)
            continue
        result = _request(telephony, page_id, text, to=to)
        outage = isinstance(result, TelephonyError) and result.retryable
        follow_up = _record_sent(session, page_id, result, now)
        session.commit()
        if isinstance(result, str):
            sent += 1
        if follow_up:
            run_follow_up(session, telephony, now, follow_up)
    if bundled:
        send_bundles(session, telephony, now)
    return sent


def _outgoing(
    session: Session, batch: list[Page], channels: dict[int, str], now: datetime
) -> tuple[list[tuple[int, str, str | None]], bool]:
    """What to send of a claimed batch: (page id, to, SMS text or None for a call), and
    whether pages past the hourly cap went into bundles instead."""
    outgoing: list[tuple[int, str, str | None]] = []  # page id, to, SMS text (None: a call)
    live = [
        page
        for page in batch
        if page.purpose == PagePurpose.TAKEN or page.dispatch.state != DispatchState.ACCEPTED
    ]
    over = bundles.past_the_cap(session, live, now)
    if over:
        bundles.lock_operators(session, {page.operator_id for page in live if page.id in over})
    bundled = False
    for page in batch:
        if page.purpose != PagePurpose.TAKEN and page.dispatch.state == DispatchState.ACCEPTED:
            page.status = CANCELED  # taken before this page left: it is never sent
            continue
        if page.id in over:
            bundles.add_to_bundle(session, page, now)
            bundled = True
            continue
        if page.operator.page_cap_since is not None and page.channel == PageChannel.SMS:
            # An SMS going out on its own is under the cap; a call past it is placed anyway
            # and does not end the episode.
            bundles.under_the_cap(page.operator)
        if page.channel == PageChannel.SMS:
            body = _sms_text(page, Channel(channels[page.dispatch.case_id]))
            outgoing.append((page.id, page.to, body))
        else:
            outgoing.append((page.id, page.to, None))
    return outgoing, bundled


def send_bundles(session: Session, telephony: Telephony, now: datetime) -> int:
    """Send every bundle due now (see routing.bundles); COMMITS. Returns how many went out."""
    outgoing = bundles.claim_due_bundles(session, now)
    session.commit()
    status_url = get_settings().public_url + "/twilio/status"
    sent = 0
    outage = False
    for bundle_id, to, text in outgoing:
        if outage:  # as in send_pending: the rest waits for the next try
            session.execute(
                update(PageBundle)
                .where(PageBundle.id == bundle_id, PageBundle.status == bundles.SENDING)
                .values(status=bundles.PENDING, retry_at=now + RETRY_FIRST, updated_at=now)
            )
            session.commit()
            continue
        result: str | TelephonyError
        try:
            result = telephony.send_sms(to=to, body=text, status_callback=status_url)
        except TelephonyError as exc:
            log.warning("bundle %s not sent: code=%s status=%s", bundle_id, exc.code, exc.status)
            result = exc
            outage = exc.retryable
        attempts = session.scalar(select(PageBundle.attempts).where(PageBundle.id == bundle_id))
        unreached = bundles.record_bundle(
            session, bundle_id, result, now, retry_at=now + retry_delay((attempts or 0) + 1)
        )
        follow_up = FollowUp()
        if isinstance(result, TelephonyError) and result.opted_out:
            bundle = session.get(PageBundle, bundle_id)
            if bundle is not None:
                mark_sms_opted_out(session, bundle.operator, now, via="error_21610")
        if isinstance(result, TelephonyError) and not result.retryable:
            follow_up.merge(
                _bundle_unreached(session, unreached, now, actor=SYSTEM, error_code=result.code)
            )
        if isinstance(result, str):
            # A status callback may have come before we knew the sid: catch up with it.
            early = session.get(DeliveryStatus, result)
            if early is not None:
                follow_up.merge(page_status_changed(session, early, now))
        session.commit()
        if isinstance(result, str):
            sent += 1
        if follow_up:
            run_follow_up(session, telephony, now, follow_up)
    return sent


def _bundle_unreached(
    session: Session,
    pages: list[Page],
    now: datetime,
    *,
    actor: str,
    error_code: int | None,
    **extra: object,
) -> FollowUp:
    """The pages of a bundle that never reached the phone: each failed and not reached, the
    same path as a failed page of its own (the fallback call, or the step skipped)."""
    follow_up = FollowUp()
    for page in pages:
        page.status = FAILED
        page.error_code = error_code
        page.updated_at = now
        _page_event(
            session,
            page,
            CaseEventKind.PAGE_FAILED,
            now,
            actor=actor,
            error_code=error_code,
            bundled=True,
            **extra,
        )
        follow_up.merge(_unreached(session, page, now))
    return follow_up


def _request(
    telephony: Telephony, page_id: int, text: str | None, *, to: str
) -> str | TelephonyError:
    """One request to Twilio: the provider id, or the error (never raised)."""
    settings = get_settings()
    status_url = settings.public_url + "/twilio/status"
    try:
        if text is not None:
            return telephony.send_sms(to=to, body=text, status_callback=status_url)
        return telephony.place_call(
            to=to,
            url=f"{settings.public_url}/twilio/alert/{page_id}",
            status_callback=status_url,
            amd_callback=f"{settings.public_url}/twilio/alert/{page_id}/amd",
            timeout_seconds=settings.ring_timeout_seconds,
        )
    except TelephonyError as exc:
        log.warning("page %s not sent: code=%s status=%s", page_id, exc.code, exc.status)
        return exc


def _release(session: Session, page_id: int, now: datetime) -> None:
    """A claimed page not tried: pending again, due at the first retry."""
    session.execute(
        update(Page)
        .where(Page.id == page_id, Page.status == SENDING)
        .values(status=PENDING, retry_at=now + RETRY_FIRST, updated_at=now)
    )
    session.commit()


def _give_up_stuck(session: Session, now: datetime) -> None:
    """A page left `sending` by a process that died during its request is not sent again
    (Twilio has no idempotency key: twice could ring twice) but counts as not reached, so the
    escalation skips past it at once instead of waiting on it."""
    stuck = list(
        session.scalars(
            select(Page).where(
                Page.status == SENDING,
                Page.provider_sid.is_(None),
                Page.updated_at < now - STUCK_AFTER,
            )
        )
    )
    for page in stuck:
        page.status = FAILED
        page.updated_at = now
        _page_event(session, page, CaseEventKind.PAGE_FAILED, now, actor=SYSTEM, stuck=True)
        _unreached(session, page, now)
    # A bundle likewise (never sent twice): the pages it listed are not reached.
    stuck_bundles = list(
        session.scalars(
            select(PageBundle).where(
                PageBundle.status == bundles.SENDING,
                PageBundle.provider_sid.is_(None),
                PageBundle.updated_at < now - STUCK_AFTER,
            )
        )
    )
    for bundle in stuck_bundles:
        bundle.status = bundles.FAILED
        bundle.updated_at = now
        _bundle_unreached(
            session,
            bundles.open_pages(session, bundle),
            now,
            actor=SYSTEM,
            error_code=None,
            stuck=True,
        )
    if not stuck and not stuck_bundles:
        return
    session.commit()
    log.warning(
        "%s page(s) and %s bundle(s) stuck in sending given up as not reached",
        len(stuck),
        len(stuck_bundles),
    )


def _record_sent(
    session: Session, page_id: int, result: str | TelephonyError, now: datetime
) -> FollowUp:
    """A page's provider id, or its failure: a retryable one waits to be sent again, a
    refusal is not reached (the fallback channel or the next step follows at once)."""
    # The page with its dispatch as they are now (one query): an accept may have come while
    # the request was on its way.
    page = session.scalars(
        select(Page)
        .where(Page.id == page_id)
        .options(joinedload(Page.dispatch))
        .execution_options(populate_existing=True)
    ).first()
    if page is None:  # pragma: no cover -- pages are never deleted
        return FollowUp()
    page.updated_at = now
    dispatch = page.dispatch
    if isinstance(result, TelephonyError):
        if result.retryable:
            page.status = PENDING
            page.attempts += 1
            page.retry_at = now + retry_delay(page.attempts)
            _page_event(
                session,
                page,
                CaseEventKind.PAGE_FAILED,
                now,
                actor=SYSTEM,
                error_code=result.code,
                retry=True,
            )
            return FollowUp()
        page.status = FAILED
        page.error_code = result.code
        _page_event(
            session, page, CaseEventKind.PAGE_FAILED, now, actor=SYSTEM, error_code=result.code
        )
        if result.opted_out:
            # STOP: no SMS reaches them any more; the call of this step (or its fallback
            # call, just below) and every later step's call still do.
            mark_sms_opted_out(session, page.operator, now, via="error_21610")
        return _unreached(session, page, now)
    page.provider_sid = result
    page.status = "sent" if page.channel == PageChannel.SMS else "queued"
    page.sent_at = now
    _page_event(session, page, CaseEventKind.PAGE_SENT, now, actor=SYSTEM)
    follow_up = FollowUp()
    if dispatch.state == DispatchState.ACCEPTED and page.purpose != PagePurpose.TAKEN:
        # Taken while this page was on its way: end the call, say who has it.
        if page.channel == PageChannel.VOICE:
            follow_up.calls_to_end.add(result)
        if page.operator_id != dispatch.accepted_by_id:
            _add_page(
                session,
                dispatch,
                page.operator,
                step=0,
                purpose=PagePurpose.TAKEN,
                tier="taken",
                channel=PageChannel.SMS,
                now=now,
            )
            follow_up.to_send.add(dispatch.id)
    # A status callback may have come before we knew the sid: catch up with it.
    early = session.get(DeliveryStatus, result)
    if early is not None:
        follow_up.merge(page_status_changed(session, early, now))
    return follow_up


def _sms_text(page: Page, channel: Channel) -> str:
    dispatch = page.dispatch
    operator = page.operator
    if page.purpose == PagePurpose.TAKEN:
        taker = dispatch.accepted_by.display_name if dispatch.accepted_by else "?"
        return alerts.taken_sms(operator, reference=dispatch.reference, taker=taker)
    if page.purpose == PagePurpose.UNANSWERED:
        return alerts.unanswered_sms(
            operator, reference=dispatch.reference, urgency=dispatch.urgency
        )
    return alerts.alert_sms(
        operator, reference=dispatch.reference, urgency=dispatch.urgency, channel=channel
    )


def _dispatch_event(
    session: Session, dispatch: Dispatch, kind: CaseEventKind, now: datetime, data: dict[str, Any]
) -> None:
    """An event of the escalation itself on its case's timeline (ids and codes only)."""
    record_event(session, case_id=dispatch.case_id, kind=kind, actor=SYSTEM, now=now, data=data)


def _page_event(
    session: Session,
    page: Page,
    kind: CaseEventKind,
    now: datetime,
    *,
    actor: str = "twilio",
    **extra: object,
) -> None:
    """An event about one page on its case's timeline (ids and codes only)."""
    record_event(
        session,
        case_id=page.dispatch.case_id,
        kind=kind,
        actor=actor,
        now=now,
        data=_page_data(page) | extra,
    )


def _page_data(page: Page) -> dict[str, Any]:
    return {
        "page_id": page.id,
        "step": page.step + 1,
        "purpose": page.purpose.value,
        "operator_id": page.operator_id,
        "channel": page.channel.value,
        "status": page.status,
    }


# --- outcomes ----------------------------------------------------------------------------------


def page_status_changed(session: Session, row: DeliveryStatus, now: datetime) -> FollowUp:
    """A provider status for one of our pages (the status callback's listener): the page's
    status follows the monotonic one; an unanswered, busy, failed call or an undelivered SMS
    puts the person out of reach for this step."""
    page = session.scalar(select(Page).where(Page.provider_sid == row.sid))
    if page is None:
        return _bundle_status_changed(session, row, now)
    if page.status != row.status:
        page.status = row.status
        page.updated_at = now
        _page_event(session, page, CaseEventKind.PAGE_STATUS, now, error_code=row.error_code)
    if row.error_code == SMS_OPTED_OUT and page.channel == PageChannel.SMS:
        mark_sms_opted_out(session, page.operator, now, via="error_21610")
    if page.outcome is not None or page.purpose == PagePurpose.TAKEN:
        return FollowUp()
    if row.status in TERMINAL_FAILURES or (
        page.channel == PageChannel.VOICE and row.status == "completed"
    ):
        # A completed call with no keypress: a human hung up, or nobody pressed a key.
        return _unreached(session, page, now)
    return FollowUp()


def _bundle_status_changed(session: Session, row: DeliveryStatus, now: datetime) -> FollowUp:
    """A provider status for a bundle: undelivered or failed, the open alerts it listed were
    not reached (their fallback call, or the step skipped), once."""
    bundle = session.scalar(select(PageBundle).where(PageBundle.provider_sid == row.sid))
    if bundle is None or bundle.status == bundles.FAILED:
        return FollowUp()
    if row.error_code == SMS_OPTED_OUT:
        mark_sms_opted_out(session, bundle.operator, now, via="error_21610")
    if row.status not in TERMINAL_FAILURES:
        return FollowUp()
    bundle.status = bundles.FAILED
    bundle.error_code = row.error_code
    bundle.updated_at = now
    return _bundle_unreached(
        session,
        bundles.open_pages(session, bundle),
        now,
        actor="twilio",
        error_code=row.error_code,
        delivery=row.status,
    )


def machine_answered(session: Session, page: Page, answered_by: str, now: datetime) -> FollowUp:
    """Voicemail or fax picked up an alert call: not reached. It hears one short sentence
    (no menu), and the escalation moves on at once."""
    page.answered_by = answered_by
    if page.outcome is not None:
        return FollowUp()
    _page_event(session, page, CaseEventKind.MACHINE_ANSWERED, now, answered_by=answered_by)
    follow_up = _unreached(session, page, now)
    if _live_call(page) and page.provider_sid:
        follow_up.calls_to_redirect[page.provider_sid] = (
            f"{get_settings().public_url}/twilio/alert/{page.id}/machine"
        )
    return follow_up


def call_not_answered(session: Session, page: Page, now: datetime) -> FollowUp:
    """The alert call was picked up but no key was pressed (twice): not reached."""
    if page.outcome is not None:
        return FollowUp()
    _page_event(session, page, CaseEventKind.NOT_REACHED, now)
    return _unreached(session, page, now)


def _unreached(session: Session, page: Page, now: datetime) -> FollowUp:
    """Mark a page not reached; a failed SMS is followed by a call (and a failed call by an
    SMS) when its step did not use that channel; then skip at once if the step is settled."""
    page.outcome = PageOutcome.NOT_REACHED
    page.updated_at = now
    dispatch = page.dispatch
    follow_up = FollowUp()
    if page.purpose == PagePurpose.ALERT and dispatch.state == DispatchState.OPEN:
        # Two callbacks of one step at once (an SMS undelivered, a call unanswered) must not
        # each see the other's person as still reachable: evaluate the step under its lock.
        session.flush()
        session.refresh(dispatch, with_for_update=True)
        if dispatch.state != DispatchState.OPEN:
            return follow_up
        other = PageChannel.VOICE if page.channel == PageChannel.SMS else PageChannel.SMS
        technical = page.channel == PageChannel.SMS or page.status == FAILED
        used = session.scalar(
            select(Page.id).where(
                Page.dispatch_id == dispatch.id,
                Page.step == page.step,
                Page.operator_id == page.operator_id,
                Page.channel == other,
            )
        )
        if technical and used is None:
            added = _add_page(
                session,
                dispatch,
                page.operator,
                step=page.step,
                purpose=PagePurpose.ALERT,
                tier=page.tier,
                channel=other,
                now=now,
            )
            if added is not None:
                follow_up.dispatch_ids.add(dispatch.id)
        session.flush()
        if _step_settled(session, dispatch):
            dispatch.due_at = now
            follow_up.dispatch_ids.add(dispatch.id)
    return follow_up


def _step_settled(session: Session, dispatch: Dispatch) -> bool:
    """Everybody paged in the current step is out of reach: declined, their call ended
    without a keypress, or every page to them failed."""
    if dispatch.state != DispatchState.OPEN or dispatch.steps_fired == 0:
        return False
    pages = list(
        session.scalars(
            select(Page).where(
                Page.dispatch_id == dispatch.id,
                Page.step == dispatch.steps_fired - 1,
                Page.purpose == PagePurpose.ALERT,
            )
        )
    )
    by_operator: dict[int, list[Page]] = {}
    for page in pages:
        by_operator.setdefault(page.operator_id, []).append(page)
    if not by_operator:
        return False
    return all(_out_of_reach(found) for found in by_operator.values())


def _out_of_reach(pages: list[Page]) -> bool:
    """Declined; or a call rang out, was busy, hung up or met a machine (a person was tried
    and did not answer); or every page to them failed (a call that could not be placed
    waits for its fallback SMS)."""
    if any(page.outcome == PageOutcome.DECLINED for page in pages):
        return True
    if any(
        page.channel == PageChannel.VOICE
        and page.outcome == PageOutcome.NOT_REACHED
        and page.status != FAILED
        for page in pages
    ):
        return True
    return all(page.outcome == PageOutcome.NOT_REACHED for page in pages)


# --- acknowledgement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What an accept or decline did, for the confirmation the operator gets."""

    reference: str
    accepted: bool = False
    declined: bool = False
    taken_by: User | None = None  # set when somebody had accepted it already
    follow_up: FollowUp = field(default_factory=FollowUp)

    @property
    def yours(self) -> bool:
        return self.accepted


def answer_alert(
    session: Session,
    dispatch: Dispatch,
    user: User,
    *,
    accepting: bool,
    via: str,
    now: datetime,
    page: Page | None = None,
) -> Answer:
    """`user` accepts (or declines) the case, by key (`page`: the call), SMS or web.

    First accept wins; a later answer learns who has it. An accept stops the escalation at
    once: pending pages are not sent, the others' ringing calls are ended and everyone else
    paged gets one SMS saying who took it. A decline leaves `user` out of the next steps,
    ends their own calls for it, and if nobody else of the step is still reachable the next
    step fires at once.
    """
    session.refresh(dispatch, with_for_update=True)
    if dispatch.state == DispatchState.ACCEPTED:
        return Answer(dispatch.reference, taken_by=dispatch.accepted_by)
    if accepting:
        return _accept(session, dispatch, user, via=via, now=now, page=page)
    return _decline(session, dispatch, user, via=via, now=now, page=page)


def _live_call(page: Page) -> bool:
    return (
        page.channel == PageChannel.VOICE
        and page.provider_sid is not None
        and page.status not in _CALL_OVER
    )


def _accept(
    session: Session, dispatch: Dispatch, user: User, *, via: str, now: datetime, page: Page | None
) -> Answer:
    dispatch.state = DispatchState.ACCEPTED
    dispatch.accepted_by_id = user.id
    dispatch.accepted_by = user
    dispatch.accepted_at = now
    dispatch.due_at = None
    if page is not None:
        page.outcome = PageOutcome.ACCEPTED
    case = session.get(Case, dispatch.case_id, with_for_update=True)
    if case is None:  # pragma: no cover -- the foreign key makes it impossible
        raise LookupError(f"dispatch {dispatch.id} has no case")
    case.accepted_by_id = user.id
    case.accepted_at = now
    if case.status in (CaseStatus.NEW, CaseStatus.DISPATCHED):
        change_status(session, case, CaseStatus.ACCEPTED, actor=user, now=now, detail={"via": via})
    audit.record(
        session,
        now=now,
        action="update",
        object_type="case",
        object_id=case.id,
        actor=user,
        fields=["accepted_by", "accepted_at"],
        detail={"via": via},
    )
    record_event(
        session,
        case_id=case.id,
        kind=CaseEventKind.ACCEPTED,
        actor=user,
        now=now,
        data={"operator_id": user.id, "via": via, "page_id": page.id if page else None},
    )
    follow_up = FollowUp(dispatch_ids={dispatch.id})
    paged = list(session.scalars(select(Page).where(Page.dispatch_id == dispatch.id)))
    told: set[int] = set()
    for other in paged:
        if other.status == PENDING and other.purpose != PagePurpose.TAKEN:
            other.status = CANCELED
            other.updated_at = now
        if _live_call(other) and (page is None or other.id != page.id):
            follow_up.calls_to_end.add(other.provider_sid or "")
        if other.operator_id != user.id and other.provider_sid and other.operator_id not in told:
            told.add(other.operator_id)
    for operator_id in sorted(told):
        operator = session.get(User, operator_id)
        if operator is not None:
            _add_page(
                session,
                dispatch,
                operator,
                step=0,
                purpose=PagePurpose.TAKEN,
                tier="taken",
                channel=PageChannel.SMS,
                now=now,
            )
    return Answer(dispatch.reference, accepted=True, follow_up=follow_up)


def _decline(
    session: Session, dispatch: Dispatch, user: User, *, via: str, now: datetime, page: Page | None
) -> Answer:
    mine = list(
        session.scalars(
            select(Page).where(
                Page.dispatch_id == dispatch.id,
                Page.operator_id == user.id,
                Page.purpose != PagePurpose.TAKEN,
            )
        )
    )
    follow_up = FollowUp()
    for own in mine:
        if own.step == dispatch.steps_fired - 1 or own is page:
            own.outcome = PageOutcome.DECLINED
        if own.status == PENDING:
            own.status = CANCELED
        if _live_call(own) and (page is None or own.id != page.id):
            follow_up.calls_to_end.add(own.provider_sid or "")
    if page is not None:
        page.outcome = PageOutcome.DECLINED
    audit.record(
        session,
        now=now,
        action="update",
        object_type="case",
        object_id=dispatch.case_id,
        actor=user,
        fields=["dispatch"],
        detail={"declined": True, "via": via},
    )
    record_event(
        session,
        case_id=dispatch.case_id,
        kind=CaseEventKind.DECLINED,
        actor=user,
        now=now,
        data={"operator_id": user.id, "via": via, "page_id": page.id if page else None},
    )
    session.flush()
    if dispatch.state == DispatchState.OPEN and _step_settled(session, dispatch):
        dispatch.due_at = now
        follow_up.dispatch_ids.add(dispatch.id)
    return Answer(dispatch.reference, declined=True, follow_up=follow_up)


# --- after the commit --------------------------------------------------------------------------


def advance(
    session: Session, telephony: Telephony, now: datetime, only: Iterable[int] = ()
) -> dict[str, int]:
    """Fire the due steps (of `only`, or of every due dispatch) and send what is pending;
    COMMITS. The worker's tick and the edges after their commit both call this."""
    ids = list(only)
    fired = 0
    for dispatch in claim_due(session, now, only=ids):
        try:
            with session.begin_nested():
                fire_due_steps(session, dispatch, now)
        except Exception:
            # One broken dispatch (a bad policy copy, say) must not hold up every other
            # case's escalation: it is retried a minute later, loudly.
            log.exception("dispatch %s of case %s failed to fire", dispatch.id, dispatch.reference)
            dispatch.due_at = now + BROKEN_RETRY
            continue
        fired += 1
    session.commit()
    sent = send_pending(session, telephony, now, only=ids)
    return {"fired": fired, "sent": sent}


def run_follow_up(
    session: Session, telephony: Telephony, now: datetime, follow_up: FollowUp
) -> None:
    """What an edge does after committing an accept, a decline or a status: end and redirect
    calls, then advance the dispatches involved. Failures are logged; the worker's next tick
    sends anything still pending."""
    for sid in sorted(follow_up.calls_to_end):
        try:
            telephony.update_call(sid, status="completed")
        except TelephonyError as exc:
            log.info("call %s not ended: code=%s", sid, exc.code)
    for sid, url in sorted(follow_up.calls_to_redirect.items()):
        try:
            telephony.update_call(sid, url=url)
        except TelephonyError as exc:
            log.info("call %s not redirected: code=%s", sid, exc.code)
    if follow_up.dispatch_ids:
        advance(session, telephony, now, follow_up.dispatch_ids)
    if follow_up.to_send - follow_up.dispatch_ids:
        send_pending(session, telephony, now, only=follow_up.to_send - follow_up.dispatch_ids)


def escalate(session: Session, telephony: Telephony, now: datetime) -> dict[str, int]:
    """The worker's job: pages stuck in flight given up, every due step fired, every pending
    page sent."""
    _give_up_stuck(session, now)
    done = advance(session, telephony, now)
    # Bundles due by their 5-minute timer or waiting for a retry, then the notices: after the
    # pages, so a busy night's alerts never queue behind them.
    send_bundles(session, telephony, now)
    bundles.tell_admins(session, telephony, now)
    tell_sms_opt_outs(session, telephony, now)
    return done


def dispatch_of_case(session: Session, case_id: int) -> Dispatch | None:
    return session.scalar(select(Dispatch).where(Dispatch.case_id == case_id))
