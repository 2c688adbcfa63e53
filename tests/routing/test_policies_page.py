"""/admin/policies over HTTP: admins only, CSRF, form errors in the form, the preview."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry
from routing.models import EscalationPolicy
from routing.policies import DEFAULT_POLICIES
from tests.alerting import Chain
from tests.conftest import UserFactory, csrf_token, login
from tests.routing.test_policies import stored

URL = "/admin/policies"


def form_of(policies: dict[str, Any], **extra: str) -> dict[str, Any]:
    """The form fields the page posts for these policies."""
    data: dict[str, Any] = {"province": "BS"}
    for urgency, policy in policies.items():
        for i, step in enumerate(policy["steps"]):
            data[f"{urgency}-{i}-targets"] = step["targets"]
            data[f"{urgency}-{i}-channels"] = step["channels"]
            data[f"{urgency}-{i}-wait"] = str(step["wait_minutes"])
        data[f"{urgency}-repeat_last"] = str(policy["repeat_last"])
    data.update(extra)
    return data


@pytest.fixture
def admin(client: FlaskClient, make_user: UserFactory) -> FlaskClient:
    user = make_user(roles=("admin",), provinces=(), email="admin@ali.example", locale="en")
    login(client, user.email)
    return client


def post(client: FlaskClient, data: dict[str, Any]) -> Any:
    token = csrf_token(client.get(URL).get_data(as_text=True))
    return client.post(URL, data={**data, "csrf_token": token})


@pytest.mark.parametrize("roles", [("operator",), ("rota_manager",), ("coordinator",)])
def test_only_admins_open_the_page(
    client: FlaskClient, make_user: UserFactory, roles: tuple[str, ...]
) -> None:
    assert client.get(URL).status_code == 302  # to the login page
    user = make_user(roles=roles)
    login(client, user.email)
    assert client.get(URL).status_code == 403
    assert client.post(URL, data={"action": "save"}).status_code in {400, 403}
    assert f'href="{URL}"' not in client.get("/").get_data(as_text=True)


def test_an_admin_sees_the_policies_and_a_preview_with_who_is_on_call(
    admin: FlaskClient, chain: Chain
) -> None:
    html = admin.get(URL + "?province=BS").get_data(as_text=True)
    assert f'href="{URL}"' in html  # in the menu
    assert 'name="emergency-0-wait" value="3"' in html
    assert 'name="ordinary-repeat_last" value="2"' in html
    preview = html[html.index('id="policy-preview"') :]
    # T0 is 11:00 in Rome; step 2 three minutes later with the primary and the backup.
    assert "11:00</time>" in preview
    assert "Paola Primaria" in preview
    assert "11:03</time>" in preview
    assert "Bruno Backup" in preview
    assert "Carla Coordinatrice" in preview
    assert "11:26</time>" in preview


def test_saving_replaces_the_policies_audited(
    admin: FlaskClient, db: Session, chain: Chain
) -> None:
    wanted = {
        **DEFAULT_POLICIES,
        "urgent": {
            "steps": [
                {"targets": ["primary"], "channels": ["voice"], "wait_minutes": 4},
                {"targets": ["backup", "coordinators"], "channels": ["sms"], "wait_minutes": 8},
            ],
            "repeat_last": 1,
        },
    }
    # The third default step of urgent is dropped with its remove box; the blank row is no step.
    data = form_of({**DEFAULT_POLICIES, "urgent": wanted["urgent"]})
    data.update(
        {
            "urgent-2-targets": ["coordinators"],
            "urgent-2-channels": ["sms"],
            "urgent-2-wait": "10",
            "urgent-2-remove": "1",
            "urgent-3-wait": "",
            "action": "save",
        }
    )
    response = post(admin, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Policies saved" in admin.get(response.location).get_data(as_text=True)
    row = db.get(EscalationPolicy, "urgent")
    assert row is not None
    assert (row.steps, row.repeat_last) == (wanted["urgent"]["steps"], 1)
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "escalation_policies"))
    assert entry.object_id == "urgent"
    assert entry.actor_id is not None


def test_bad_values_are_messages_in_the_form_and_nothing_is_saved(
    admin: FlaskClient, db: Session
) -> None:
    before = stored(db)
    data = form_of(DEFAULT_POLICIES, action="save")
    data["emergency-1-wait"] = "tre"
    data["emergency-2-targets"] = ["primary"]  # the last step without the coordinators
    data["urgent-0-channels"] = ["fax"]  # a crafted request
    data["ordinary-repeat_last"] = "-1"
    response = post(admin, data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Nothing was saved" in html
    assert "Wait (minutes): must be a whole number of minutes from 1 to 240" in html
    assert "Who is alerted: the last step must include coordinators" in html
    assert "How: must be one of sms, voice" in html
    assert "Repeats of the last step: must be a whole number from 0 to 10" in html
    assert 'value="tre"' in html  # what was typed stays in the form
    assert "policy-preview" not in html
    assert stored(db) == before


def test_a_control_character_in_the_form_is_refused_before_the_page(
    admin: FlaskClient, db: Session
) -> None:
    before = stored(db)
    data = form_of(DEFAULT_POLICIES, action="save")
    data["urgent-0-channels"] = ["sms\x00"]
    response = post(admin, data)
    assert response.status_code == 400
    assert "control characters" in response.get_data(as_text=True)
    assert stored(db) == before


def test_an_empty_policy_and_a_strange_province_are_form_errors(
    admin: FlaskClient, db: Session
) -> None:
    data = form_of(DEFAULT_POLICIES, action="preview", province="ZZ")
    for i in range(3):
        data[f"urgent-{i}-remove"] = "1"
    response = post(admin, data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Steps: must be a non-empty list of steps" in html
    assert "Choose one of the served provinces." in html


def test_a_post_without_the_csrf_token_is_refused(admin: FlaskClient, db: Session) -> None:
    before = stored(db)
    response = admin.post(URL, data=form_of(DEFAULT_POLICIES, action="save"))
    assert response.status_code == 400
    assert stored(db) == before


def test_preview_shows_the_edited_policy_without_saving_it(
    admin: FlaskClient, db: Session, chain: Chain
) -> None:
    before = stored(db)
    data = form_of(DEFAULT_POLICIES, action="preview")
    data["emergency-0-wait"] = "10"
    data["emergency-repeat_last"] = "0"
    html = post(admin, data).get_data(as_text=True)
    preview = html[html.index('id="policy-preview"') :]
    assert "not saved yet" in preview
    assert "11:10</time>" in preview  # step 2 after the edited wait
    assert "11:18</time>" in preview  # 10 + 3 + 5 minutes, no repeats: unanswered
    assert "repeat of the last" not in preview
    assert stored(db) == before


def test_the_page_speaks_italian(client: FlaskClient, make_user: UserFactory) -> None:
    user = make_user(roles=("admin",), provinces=())
    login(client, user.email)
    html = client.get(URL).get_data(as_text=True)
    assert "Politiche di escalation" in html
    assert "Anteprima" in html
