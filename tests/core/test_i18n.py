"""Languages: Italian by default, English on request, and a complete Italian catalogue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry
from tests.conftest import UserFactory, csrf_token, login
from tests.twilio_standin import TwilioStandIn

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "core" / "translations"


def test_english_can_be_chosen_before_login(client: FlaskClient) -> None:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": token})
    assert response.status_code == 302
    html = client.get("/login").get_data(as_text=True)
    assert 'lang="en"' in html
    assert "Sign in" in html


def test_a_users_language_preference_is_kept(client: FlaskClient, make_user: UserFactory) -> None:
    make_user(email="op@ali.example", locale="en")
    login(client, "op@ali.example")
    assert "Sign out" in client.get("/").get_data(as_text=True)


def test_the_footer_switch_changes_the_pages_only_never_the_sms_language(
    client: FlaskClient, db: Session, make_user: UserFactory, twilio: TwilioStandIn
) -> None:
    anna = make_user(email="op@ali.example", verified=False)
    login(client, "op@ali.example")
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post("/language", data={"lang": "en", "next": "/", "csrf_token": token})
    assert response.status_code == 302
    assert "Sign out" in client.get("/").get_data(as_text=True)
    db.refresh(anna)
    assert anna.locale == "it"
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "update")).all() == []
    # Her SMS stay in the language of her profile.
    token = csrf_token(client.get("/profile/").get_data(as_text=True))
    client.post("/profile/phone/code", data={"csrf_token": token})
    assert (twilio.messages[-1].body or "").startswith("Ali: il tuo codice di verifica è")


def test_the_profile_language_is_saved_audited_and_shown_at_once(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    anna = make_user(email="op@ali.example")
    login(client, "op@ali.example")
    token = csrf_token(client.get("/").get_data(as_text=True))
    client.post("/language", data={"lang": "it", "next": "/", "csrf_token": token})
    client.post("/profile/language", data={"locale": "en", "csrf_token": token})
    assert "Sign out" in client.get("/").get_data(as_text=True)
    db.refresh(anna)
    assert anna.locale == "en"
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "update")).one()
    assert (entry.object_id, entry.actor_id, entry.fields) == (str(anna.id), anna.id, ["locale"])


def test_unknown_language_is_ignored(client: FlaskClient) -> None:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/language", data={"lang": "xx", "next": "//evil.example", "csrf_token": token})
    assert 'lang="it"' in client.get("/login").get_data(as_text=True)


def test_every_string_in_the_code_has_an_italian_translation(tmp_path: Path) -> None:
    template = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(TRANSLATIONS / "babel.cfg"),
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(template),
            "core",
            "intake",
            "routing",
            "oncall",
            "templates",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with template.open("rb") as pot:
        wanted = {m.id for m in read_po(pot) if m.id}
    with (TRANSLATIONS / "it" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale="it")
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    missing = sorted(str(i) for i in wanted - translated)
    assert missing == [], "run `make messages` and translate: " + "; ".join(missing[:20])
