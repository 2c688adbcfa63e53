"""The hourly page cap: past ALI_PAGE_CAP_PER_HOUR pages to one operator, further SMS pages
are bundled into one SMS every 5 minutes listing the references, never dropped. Calls are
never bundled (they are still placed), nor anything of an operator who texted STOP.

* Only what reached the operator's phone on its own counts (pages with a provider id sent in
  the last hour); a bundled page does not, so once the hour has slid past the burst, pages
  go out one by one again: the episode is over.
* A bundled page counts for the escalation as the step having paged that person: its
  status is `bundled`, it has no outcome, and the step's wait runs as for any page.
* A bundle is a durable timer like a dispatch: a row, pending until `due_at`, claimed by
  one sender (pending → sending) in a committed UPDATE before Twilio is asked.
* The admins are told once per episode (`users.page_cap_since` is when it began; the
  claim key carries it), by the worker's tick.

This module holds the rows and the texts; `routing.dispatch` sends and records.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from core.claims import Outcome, send_once
from core.config import get_settings
from core.models import Role, User, users_with_role
from core.telephony import Telephony, TelephonyError
from oncall.notifications import texting_coordinators
from routing import alerts
from routing.models import (
    Dispatch,
    DispatchState,
    Page,
    PageBundle,
    PageChannel,
    PagePurpose,
)

log = logging.getLogger(__name__)

BUNDLED = "bundled"
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
CANCELED = "canceled"
BUNDLE_EVERY = timedelta(minutes=5)
WINDOW = timedelta(hours=1)


def sent_last_hour(session: Session, operator_ids: set[int], now: datetime) -> dict[int, int]:
    """Pages that reached each operator's phone on their own in the hour before `now`."""
    if not operator_ids:
        return {}
    rows = session.execute(
        select(Page.operator_id, func.count(Page.id))
        .where(
            Page.operator_id.in_(operator_ids),
            Page.sent_at > now - WINDOW,
            Page.provider_sid.is_not(None),
        )
        .group_by(Page.operator_id)
    )
    return {int(operator_id): int(count) for operator_id, count in rows}


def past_the_cap(session: Session, batch: Sequence[Page], now: datetime) -> set[int]:
    """Ids of the SMS pages of `batch` (in order) that would take their operator past the cap.

    A call is never bundled: a ringing phone is what wakes someone at 3 a.m., and the cap is
    about SMS floods (a call past it still counts, it reached the phone). Nothing is bundled
    for an operator who texted STOP: Twilio would refuse the bundle (21610) and calls reach
    them."""
    cap = get_settings().page_cap_per_hour
    counts = sent_last_hour(session, {page.operator_id for page in batch}, now)
    over: set[int] = set()
    for page in batch:
        sent = counts.get(page.operator_id, 0)
        if (
            sent >= cap
            and page.channel == PageChannel.SMS
            and page.operator.sms_opted_out_at is None
        ):
            over.add(page.id)
        else:
            counts[page.operator_id] = sent + 1
    return over


def lock_operators(session: Session, operator_ids: set[int]) -> None:
    """One sender at a time decides an operator's bundle (two would open two bundles): lock
    their rows, in id order so that two senders cannot deadlock."""
    session.execute(
        select(User.id).where(User.id.in_(operator_ids)).order_by(User.id).with_for_update()
    )


def add_to_bundle(session: Session, page: Page, now: datetime) -> PageBundle:
    """Put `page` in its operator's pending bundle; a new bundle is due 5 minutes after the
    previous one (at once for the first of an episode). Lock the operator first."""
    operator = page.operator
    if operator.page_cap_since is None:
        operator.page_cap_since = now
        log.warning("operator %s is past the hourly page cap: bundling", operator.id)
    bundle = session.scalars(
        select(PageBundle)
        .where(PageBundle.operator_id == operator.id, PageBundle.status == PENDING)
        .order_by(PageBundle.id)
        .limit(1)
    ).first()
    if bundle is None:
        last_due = session.scalar(
            select(func.max(PageBundle.due_at)).where(PageBundle.operator_id == operator.id)
        )
        due = now if last_due is None else max(now, last_due + BUNDLE_EVERY)
        bundle = PageBundle(
            operator_id=operator.id,
            to=page.to,
            status=PENDING,
            due_at=due,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        session.add(bundle)
        session.flush()
    page.status = BUNDLED
    page.bundle_id = bundle.id
    page.updated_at = now
    return bundle


def under_the_cap(operator: User) -> None:
    """A page went out on its own: the operator is back under the cap, the episode is over."""
    operator.page_cap_since = None


def claim_due_bundles(session: Session, now: datetime) -> list[tuple[int, str, str]]:
    """(bundle id, phone, text) of every bundle due now, claimed (pending → sending) in this
    transaction: the caller commits before sending. A bundle with nothing left to say (every
    case taken by its own operator) is canceled."""
    claimed = list(
        session.scalars(
            update(PageBundle)
            .where(
                PageBundle.status == PENDING,
                PageBundle.due_at <= now,
                or_(PageBundle.retry_at.is_(None), PageBundle.retry_at <= now),
            )
            .values(status=SENDING, updated_at=now)
            .returning(PageBundle.id)
        )
    )
    if not claimed:
        return []
    bundles = list(
        session.scalars(
            select(PageBundle)
            .where(PageBundle.id.in_(claimed))
            .options(joinedload(PageBundle.operator))
            .order_by(PageBundle.id)
            .execution_options(populate_existing=True)
        )
    )
    listed: dict[int, list[tuple[Page, Dispatch]]] = {}
    for page, dispatch in session.execute(
        select(Page, Dispatch)
        .join(Dispatch, Dispatch.id == Page.dispatch_id)
        .where(Page.bundle_id.in_(claimed))
        .order_by(Page.id)
    ):
        listed.setdefault(page.bundle_id or 0, []).append((page, dispatch))
    outgoing: list[tuple[int, str, str]] = []
    for bundle in bundles:
        alerts_open: list[str] = []
        taken: list[str] = []
        for page, dispatch in listed.get(bundle.id, []):
            if dispatch.accepted_by_id == bundle.operator_id:
                continue  # theirs already: nothing to tell them
            if page.purpose == PagePurpose.TAKEN or dispatch.state == DispatchState.ACCEPTED:
                taken.append(dispatch.reference)
            else:
                alerts_open.append(dispatch.reference)
        taken = sorted(set(taken) - set(alerts_open))
        alerts_open = sorted(set(alerts_open))
        if not alerts_open and not taken:
            bundle.status = CANCELED
            continue
        text = alerts.bundle_sms(bundle.operator, alerts_open=alerts_open, taken=taken)
        outgoing.append((bundle.id, bundle.to, text))
    return outgoing


def record_bundle(
    session: Session,
    bundle_id: int,
    result: str | TelephonyError,
    now: datetime,
    *,
    retry_at: datetime,
) -> list[Page]:
    """A bundle's provider id, or its failure: a retryable one waits until `retry_at`; after
    a refusal, the open alerts it listed (not reached by SMS) are returned to the caller."""
    bundle = session.get(PageBundle, bundle_id, populate_existing=True)
    if bundle is None:  # pragma: no cover -- bundles are never deleted
        return []
    bundle.updated_at = now
    if isinstance(result, str):
        bundle.status = SENT
        bundle.provider_sid = result
        bundle.sent_at = now
        return []
    if result.retryable:
        bundle.status = PENDING
        bundle.attempts += 1
        bundle.retry_at = retry_at
        return []
    bundle.status = FAILED
    bundle.error_code = result.code
    return open_pages(session, bundle)


def open_pages(session: Session, bundle: PageBundle) -> list[Page]:
    """The open alerts `bundle` listed that have no outcome yet: a bundle that never reached
    the phone leaves them not reached."""
    return list(
        session.scalars(
            select(Page)
            .join(Dispatch, Dispatch.id == Page.dispatch_id)
            .where(
                Page.bundle_id == bundle.id,
                Page.purpose != PagePurpose.TAKEN,
                Page.outcome.is_(None),
                Dispatch.state == DispatchState.OPEN,
            )
            .order_by(Page.id)
        )
    )


# --- the admins are told, once per episode ------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def tell_admins(session: Session, telephony: Telephony, now: datetime) -> dict[str, int]:
    """Every admin hears once of each operator's episode past the cap; an episode whose
    operator has slid back under the cap is closed. COMMITS (each notice is claimed first)."""
    counts = {outcome.value: 0 for outcome in Outcome}
    capped = list(session.scalars(select(User).where(User.page_cap_since.is_not(None))))
    if not capped:
        return counts
    cap = get_settings().page_cap_per_hour
    sent = sent_last_hour(session, {user.id for user in capped}, now)
    admins = [
        user
        for user in users_with_role(session, Role.ADMIN)
        if user.can_be_paged and user.sms_opted_out_at is None
    ] or texting_coordinators(session)  # no admin to text: the coordinators, not nobody
    status_url = get_settings().public_url + "/twilio/status"
    for operator in capped:
        since = operator.page_cap_since
        if since is None:  # pragma: no cover -- selected for it
            continue
        if sent.get(operator.id, 0) < cap:
            operator.page_cap_since = None  # back under the cap: the episode is over
            session.commit()
            continue
        for admin in admins:
            outcome = send_once(
                session,
                key=f"page_cap:{operator.id}:{_stamp(since)}:{admin.id}",
                kind="page_cap",
                user_id=admin.id,
                now=now,
                send=partial(
                    telephony.send_sms,
                    to=admin.phone or "",
                    body=alerts.page_cap_notice(admin, operator=operator, cap=cap),
                    status_callback=status_url,
                ),
            )
            counts[outcome.value] += 1
            if outcome is Outcome.RETRY:
                return counts  # Twilio is down: the next tick tries again
    return counts
