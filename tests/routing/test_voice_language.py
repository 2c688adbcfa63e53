"""The alert call speaks the operator's language: every <Say> of the TwiML, parsed as XML,
carries en-GB for an operator who chose English and it-IT for an Italian one."""

from __future__ import annotations

from xml.etree import ElementTree

from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.clock import FrozenClock
from tests.alerting import Phone, on_shift
from tests.conftest import UserFactory
from tests.intake.signed import Sender

EMERGENCY = {"external_id": "NV-1", "province": "BS", "urgency": "emergency"}


def says(response: TestResponse) -> list[tuple[str | None, str]]:
    """(language, text) of every <Say>, wherever it is in the document."""
    root = ElementTree.fromstring(response.get_data(as_text=True))  # noqa: S314 -- our TwiML
    assert root.tag == "Response"
    return [(say.get("language"), say.text or "") for say in root.iter("Say")]


def test_an_operator_who_chose_english_hears_english_and_an_italian_one_italian(
    sender: Sender, make_user: UserFactory, db: Session, phone: Phone, clock: FrozenClock
) -> None:
    emma = make_user(name="Emma", locale="en")
    italo = make_user(name="Italo", locale="it")
    on_shift(db, emma, at=clock.now())
    on_shift(db, italo, at=clock.now(), tier="backup")
    sender.post(EMERGENCY)

    [emma_call] = phone.calls_to(emma)
    menu = says(phone.answer(emma_call.sid))
    assert menu == [
        (
            "en-GB",
            "Ali alert, EMERGENCY, province of Brescia, case B S 2 0 2 6 0 0 0 1. "
            "Press 1 to accept, 2 to decline.",
        )
    ]
    phone.tick(minutes=3)  # step 2: the backup is called too, in Italian
    [italo_call] = phone.calls_to(italo)
    assert says(phone.answer(italo_call.sid)) == [
        (
            "it-IT",
            "Allerta Ali, EMERGENZA, provincia di Brescia, caso B S 2 0 2 6 0 0 0 1. "
            "Premi 1 per accettare, 2 per rifiutare.",
        )
    ]
    declined = says(phone.press(italo_call.sid, "2"))
    assert [language for language, _ in declined] == ["it-IT"]

    [_, emma_again] = phone.calls_to(emma)
    accepted = says(phone.press(emma_again.sid, "1"))
    assert accepted == [("en-GB", "Case accepted, it is yours. Thank you.")]
