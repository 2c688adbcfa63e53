"""What a newcomer tripped over, in a real browser: desktop and a 390 px phone, axe-core."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskCliRunner
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import hash_password
from core.clock import FrozenClock
from core.models import User
from oncall.models import Rotation
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    BrowserPage,
    PageFactory,
    axe_violations,
    browser_fixture,
    browser_page_fixture,
    horizontal_overflow,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import PASSWORD


def wrapper_overflow(page: Page) -> int:
    """How many CSS pixels the widest table wrapper scrolls sideways (0 when it fits)."""
    found: int = page.evaluate(
        "() => Math.max(0, ...[...document.querySelectorAll('.table-wrap')]"
        ".map(e => e.scrollWidth - e.clientWidth))"
    )
    return found


def broken_words(page: Page, selector: str = ".op-name, .holiday-name, thead th") -> list[str]:
    """Words of names, holidays and headers that the layout split over two lines."""
    found: list[str] = page.evaluate(
        """(selector) => {
            const broken = [];
            for (const element of document.querySelectorAll(selector)) {
                const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    for (const match of node.data.matchAll(/\\S+/g)) {
                        const range = document.createRange();
                        range.setStart(node, match.index);
                        range.setEnd(node, match.index + match[0].length);
                        const rects = [...range.getClientRects()];
                        const tops = new Set(rects.map(r => Math.round(r.top)));
                        if (tops.size > 1) broken.push(match[0]);
                    }
                }
            }
            return broken;
        }""",
        selector,
    )
    return found


@pytest.fixture
def demo(runner: FlaskCliRunner, db: Session, clock: FrozenClock) -> None:
    """`ali demo` on Tuesday 3 November 2026 (the gap: BG, Monday 9 to Wednesday 11), every
    demo user with the tests' password."""
    clock.set(datetime(2026, 11, 3, 10, 0, tzinfo=UTC))
    assert runner.invoke(args=["demo"]).exit_code == 0
    for user in db.scalars(select(User)):
        user.password_hash = hash_password(PASSWORD)
    db.commit()


def check_page(page: BrowserPage, name: str, *, phone: bool) -> None:
    """No sideways scrolling (body or table), no word cut, no axe violation, no console error."""
    assert horizontal_overflow(page.page) <= 0
    if phone:
        assert wrapper_overflow(page.page) <= 0
        assert broken_words(page.page) == []
    assert axe_violations(page.page) == []
    assert page.console_errors == []
    page.screenshot(f"newcomer-{name}-{'phone' if phone else 'desktop'}")


@pytest.mark.parametrize("phone", [False, True])
def test_the_demo_month_fits_a_phone_without_cutting_names(
    new_page: PageFactory, demo: None, phone: bool
) -> None:
    view = new_page(phone=phone)
    sign_in(view.page, "operatore1.bg@ali.example")
    for url in ("/rota/BG", "/rota/BG?month=2026-12", "/rota/coordinators"):
        view.page.goto(url)
        expect(view.page.locator("table.rota-month")).to_be_visible()
        check_page(view, "month", phone=phone)
    # The demo has no conflict: nobody is primary and backup at once.
    expect(view.page.locator("#conflicts")).to_have_count(0)


@pytest.mark.parametrize("phone", [False, True])
def test_my_shifts_show_the_whole_coordinator_shift_unclipped(
    new_page: PageFactory, demo: None, phone: bool
) -> None:
    view = new_page(phone=phone)
    sign_in(view.page, "coordinatrice@ali.example")
    view.page.goto("/rota/mine")
    row = view.page.locator("table.my-shifts tbody tr")
    expect(row).to_have_count(1)
    # The demo's ten-week shift, from Monday 26 October to Monday 4 January.
    expect(row).to_contain_text("lun 26 ott 09:00")
    expect(row).to_contain_text("lun 4 gen 09:00")
    expect(row).to_contain_text("1.680 h")  # ten weeks, with the thousands separator
    expect(row).to_contain_text("Coordinamento")
    check_page(view, "mine", phone=phone)
    cell = row.locator("td").last
    box = cell.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= view.page.viewport_size["width"]  # type: ignore[index]


@pytest.mark.parametrize("phone", [False, True])
def test_on_call_now_shows_who_is_next_and_highlights_the_viewer(
    new_page: PageFactory, demo: None, phone: bool
) -> None:
    view = new_page(phone=phone)
    sign_in(view.page, "operatore1.bg@ali.example")
    view.page.goto("/rota/now")
    card = view.page.locator("#province-BG")
    expect(card).to_have_class(re.compile(r"\bmine\b"))
    # Operatore 1 is the backup this week; after the gap, Operatore 2 is primary again.
    expect(card.locator("dd.backup.me")).to_contain_text("Operatore 1 BG")
    expect(card.locator("dd.backup.me .badge-me")).to_have_text("tu")
    expect(card.locator("dd.next-primary")).to_contain_text("Poi: Operatore 2 BG da mer 11 nov")
    expect(card.locator("dd.next-backup")).to_contain_text("Poi: Operatore 2 BG da lun 9 nov")
    check_page(view, "now", phone=phone)
    # A coordinator finds her own line among the coordinators.
    other = new_page(phone=phone)
    sign_in(other.page, "coordinatrice@ali.example")
    other.page.goto("/rota/now")
    expect(other.page.locator("#coordinators li.me")).to_contain_text("Chiara Coordinatrice")
    check_page(other, "now-coordinator", phone=phone)


@pytest.mark.parametrize("phone", [False, True])
def test_editing_a_rotation_previews_gaps_and_a_gap_day_swap_prefills_the_gap(
    new_page: PageFactory, demo: None, db: Session, phone: bool
) -> None:
    view = new_page(phone=phone)
    page = view.page
    sign_in(page, "operatore1.bg@ali.example")
    rotation = db.scalars(select(Rotation).where(Rotation.name == "Demo principale BG")).one()
    page.goto(f"/rota/BG/rotations/{rotation.id}")
    page.get_by_role("button", name="Anteprima", exact=True).click()
    # The rotation ends before the gap: the preview shows the gap after it, as a new one would.
    expect(page.locator("#preview li.gap").first).to_contain_text("lun 9 nov 09:00")
    check_page(view, "rotation-edit", phone=phone)

    page.goto("/rota/BG?month=2026-11")
    link = page.locator("#day-2026-11-10 td.tier-primary").get_by_role("link")
    link.scroll_into_view_if_needed()
    link.click()
    expect(page.locator("#start")).to_have_value("2026-11-09T09:00")
    expect(page.locator("#end")).to_have_value("2026-11-11T09:00")
    check_page(view, "swap-from-gap", phone=phone)
