"""The hourly page cap: a burst of cases to one province floods nobody's phone, drops nothing,
slows no escalation, and the admins hear of it once per episode."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.models import User
from routing.models import (
    CaseEvent,
    CaseEventKind,
    Dispatch,
    DispatchState,
    Page,
    PageBundle,
    PageOutcome,
)
from tests.alerting import Chain, Phone, dispatch_of, pages, reply_text
from tests.conftest import T0, UserFactory
from tests.intake.signed import Sender
from tests.twilio_standin import TwilioStandIn

CASES = 20
CAP = 30  # ALI_PAGE_CAP_PER_HOUR's default
REFERENCE = re.compile(r"BS-2026-\d{4}")


def _burst(sender: Sender) -> None:
    for n in range(CASES):
        body = {
            "external_id": f"NV-{n}",
            "province": "BS",
            "urgency": "emergency",
            "summary": "Maria, 19 anni, chiede aiuto in via Roma",
        }
        assert sender.post(body).status_code == 201


def _bundles(db: Session, user: User) -> list[PageBundle]:
    db.expire_all()
    return list(
        db.scalars(
            select(PageBundle).where(PageBundle.operator_id == user.id).order_by(PageBundle.id)
        )
    )


def _bundle_texts(phone: Phone, user: User) -> list[str]:
    return [text for text in phone.sms_to(user) if "limite orario" in text]


def test_a_burst_past_the_cap_is_bundled_every_5_minutes_and_nothing_is_dropped(
    sender: Sender,
    chain: Chain,
    phone: Phone,
    db: Session,
    twilio: TwilioStandIn,
    make_user: UserFactory,
) -> None:
    admin = make_user(name="Ada Admin", roles=("admin",), provinces=())
    _burst(sender)

    # The first 30 pages (15 cases by SMS and call) reach the primary one by one; the rest
    # of the SMS wait in bundles, the first of which goes at once. Calls are never bundled.
    alerts = [t for t in phone.sms_to(chain.primary) if "limite orario" not in t]
    assert len(alerts) == CAP // 2
    assert len(phone.calls_to(chain.primary)) == CASES
    [first] = _bundle_texts(phone, chain.primary)
    assert REFERENCE.findall(first) == ["BS-2026-0016"]
    assert first.endswith("https://ali.example.org/cases")
    for private in ("Maria", "Roma", "19 anni"):
        assert private not in first
    bundled = [p for p in pages(db) if p.status == "bundled"]
    assert {p.operator_id for p in bundled} == {chain.primary.id}
    assert len(bundled) == CASES - CAP // 2
    assert {p.channel.value for p in bundled} == {"sms"}

    phone.tick()
    [notice] = phone.sms_to(admin)
    assert "Paola Primaria" in notice
    assert "30" in notice

    for _minute in range(30):  # every step and repeat of every case, a tick a minute
        phone.tick(minutes=1)

    # Escalation timing is unaffected: every case, bundled or not, stepped on schedule.
    db.expire_all()
    for dispatch in db.scalars(select(Dispatch)):
        fired = db.scalars(
            select(CaseEvent.at)
            .where(CaseEvent.case_id == dispatch.case_id, CaseEvent.kind == CaseEventKind.STEP)
            .order_by(CaseEvent.id)
        )
        assert [(at - T0) / timedelta(minutes=1) for at in fired] == [0, 3, 6, 11, 16, 21]

    # Never dropped: every case reached the primary's phone, alone or in a bundle.
    texts = phone.sms_to(chain.primary)
    seen = {ref for text in texts for ref in REFERENCE.findall(text)}
    assert seen == {f"BS-2026-{n:04d}" for n in range(1, CASES + 1)}
    for page in pages(db):
        assert page.status != "pending"
        assert (page.status == "bundled") == (page.bundle_id is not None)
    # At most one bundle every 5 minutes, each sent once.
    sent = [b for b in _bundles(db, chain.primary) if b.status == "sent"]
    assert len(sent) >= 2
    assert len(_bundle_texts(phone, chain.primary)) == len(sent)
    times = [b.sent_at for b in sent if b.sent_at is not None]
    assert all(later - earlier >= timedelta(minutes=5) for earlier, later in pairwise(times))
    assert all(b.status in {"sent", "canceled"} for b in _bundles(db, chain.primary))
    # Step 2 took the backup past the cap too: one notice per operator and episode.
    admin_texts = phone.sms_to(admin)
    assert sum("Paola Primaria" in text for text in admin_texts) == 1
    assert sum("Bruno Backup" in text for text in admin_texts) == 1

    # An hour after the burst the primary is back under the cap: the episode is over, and
    # the next case reaches them on its own.
    phone.tick(minutes=40)
    db.refresh(chain.primary)
    assert chain.primary.page_cap_since is None
    before = len(phone.sms_to(chain.primary))
    sender.post({"external_id": "NV-late", "province": "BS", "urgency": "emergency"})
    [late] = phone.sms_to(chain.primary)[before:]
    assert late.startswith("ALI BS-2026-0021 EMERGENZA")
    assert len(phone.sms_to(admin)) == len(admin_texts)


def test_a_bundle_goes_out_when_twilio_recovers(
    sender: Sender, chain: Chain, phone: Phone, db: Session, twilio: TwilioStandIn
) -> None:
    _burst(sender)
    phone.tick()
    twilio.set_down(status=500)
    phone.tick(minutes=5)  # the second bundle is due, Twilio refuses it
    [waiting] = [b for b in _bundles(db, chain.primary) if b.status == "pending"]
    assert waiting.attempts >= 1
    assert len(_bundle_texts(phone, chain.primary)) == 1
    twilio.set_down(False)
    phone.tick(minutes=1)
    texts = _bundle_texts(phone, chain.primary)
    assert len(texts) == 2
    assert set(REFERENCE.findall(texts[1])) >= {f"BS-2026-{n:04d}" for n in range(17, 21)}


def test_an_operator_who_texted_stop_is_called_past_the_cap_and_never_bundled(
    sender: Sender, chain: Chain, phone: Phone, db: Session, twilio: TwilioStandIn
) -> None:
    phone.text(chain.primary, "STOP")
    cases = CAP + 5
    for n in range(cases):
        body = {"external_id": f"NV-{n}", "province": "BS", "urgency": "emergency"}
        assert sender.post(body).status_code == 201
    phone.tick()
    # Every case rang their phone, past the cap too; no SMS Twilio would refuse (21610).
    assert len(phone.calls_to(chain.primary)) == cases
    assert phone.sms_to(chain.primary) == []
    assert _bundles(db, chain.primary) == []
    db.refresh(chain.primary)
    assert chain.primary.page_cap_since is None


def _listed(db: Session, bundle: PageBundle) -> list[Page]:
    db.expire_all()
    return list(db.scalars(select(Page).where(Page.bundle_id == bundle.id).order_by(Page.id)))


def test_a_bundle_left_sending_by_a_crash_is_given_up_and_its_cases_not_reached(
    sender: Sender, chain: Chain, phone: Phone, db: Session, twilio: TwilioStandIn
) -> None:
    _burst(sender)
    [waiting] = [b for b in _bundles(db, chain.primary) if b.status == "pending"]
    # A worker claimed it and died before Twilio answered.
    db.execute(update(PageBundle).where(PageBundle.id == waiting.id).values(status="sending"))
    db.commit()
    texts = len(_bundle_texts(phone, chain.primary))
    phone.tick(minutes=3)
    [stuck] = [b for b in _bundles(db, chain.primary) if b.id == waiting.id]
    assert stuck.status == "failed"
    listed = _listed(db, stuck)
    assert listed
    assert {p.status for p in listed} == {"failed"}
    assert {p.outcome for p in listed} == {PageOutcome.NOT_REACHED}
    failed = [
        e.data
        for e in db.scalars(select(CaseEvent).where(CaseEvent.kind == CaseEventKind.PAGE_FAILED))
    ]
    assert {f["page_id"] for f in failed if f.get("stuck")} == {p.id for p in listed}
    assert len(_bundle_texts(phone, chain.primary)) == texts  # never sent twice


def test_a_bundle_twilio_reports_undelivered_leaves_its_cases_not_reached(
    sender: Sender, chain: Chain, phone: Phone, db: Session, twilio: TwilioStandIn
) -> None:
    _burst(sender)
    [sent] = [b for b in _bundles(db, chain.primary) if b.status == "sent"]
    assert sent.provider_sid is not None
    assert phone.message_status(sent.provider_sid, "undelivered", 30003).status_code < 300
    [failed] = [b for b in _bundles(db, chain.primary) if b.id == sent.id]
    assert failed.status == "failed"
    assert failed.error_code == 30003
    listed = _listed(db, failed)
    assert [the_case_ref(db, p) for p in listed] == ["BS-2026-0016"]
    assert {p.outcome for p in listed} == {PageOutcome.NOT_REACHED}
    # Once: a repeated callback changes nothing.
    before = len(list(db.scalars(select(CaseEvent))))
    phone.message_status(sent.provider_sid, "undelivered", 30003)
    assert len(list(db.scalars(select(CaseEvent)))) == before


def the_case_ref(db: Session, page: Page) -> str:
    return db.scalars(select(Dispatch.reference).where(Dispatch.id == page.dispatch_id)).one()


def test_a_bare_reply_past_the_cap_answers_what_was_sent_and_a_reference_what_was_bundled(
    sender: Sender, chain: Chain, phone: Phone, db: Session, twilio: TwilioStandIn
) -> None:
    _burst(sender)  # BS-2026-0016 went in the first bundle, 0017-0020 wait in the next
    assert [b.status for b in _bundles(db, chain.primary)] == ["sent", "pending"]
    assert "BS-2026-0016" in reply_text(phone.text(chain.primary, "1"))
    assert dispatch_of(db, "BS-2026-0016").accepted_by_id == chain.primary.id
    assert dispatch_of(db, "BS-2026-0020").state == DispatchState.OPEN
    # Not yet sent, but named: the reply finds it all the same.
    assert "BS-2026-0018" in reply_text(phone.text(chain.primary, "OK BS-18"))
    assert dispatch_of(db, "BS-2026-0018").accepted_by_id == chain.primary.id


def test_with_no_admin_to_text_the_coordinators_hear_of_the_cap(
    sender: Sender, chain: Chain, phone: Phone, db: Session, make_user: UserFactory
) -> None:
    unverified = make_user(name="Ada Admin", roles=("admin",), provinces=(), verified=False)
    _burst(sender)
    phone.tick()
    assert phone.sms_to(unverified) == []
    [notice] = [t for t in phone.sms_to(chain.coordinator) if "Paola Primaria" in t]
    assert "30" in notice
