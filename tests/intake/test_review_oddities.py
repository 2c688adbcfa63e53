"""Review of issue 3: odd but possible requests that must not end in a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import SettingsError, load_settings
from intake.models import Handoff
from tests.conftest import ali_environ
from tests.intake.signed import HANDOFFS, Sender


def test_nul_byte_in_the_status_path_is_a_404(sender: Sender) -> None:
    # PostgreSQL refuses NUL in text parameters; it must be a plain 404, not a 500.
    response = sender.get(f"{HANDOFFS}/NV%002026")
    assert response.status_code == 404


def test_nul_byte_in_the_key_header_is_a_401(sender: Sender, db: Session) -> None:
    response = sender.post({"external_id": "nul-key"}, headers={"X-Ali-Key": "ak_\x00"})
    assert response.status_code == 401
    assert db.scalar(select(func.count()).select_from(Handoff)) == 0


def test_very_long_ids_in_path_and_key_are_plain_refusals(sender: Sender, db: Session) -> None:
    assert sender.get(f"{HANDOFFS}/{'x' * 10_000}").status_code == 404
    response = sender.post({"external_id": "long-key"}, headers={"X-Ali-Key": "k" * 10_000})
    assert response.status_code == 401


def test_duplicate_keys_are_read_last_wins_and_never_fail(sender: Sender, db: Session) -> None:
    response = sender.post(b'{"external_id": "first", "external_id": "second"}')
    assert response.status_code == 201
    assert db.scalars(select(Handoff.external_id)).all() == ["second"]


@pytest.mark.parametrize("provinces", ["BX", "BS,Brescia"])
def test_served_provinces_that_are_not_siglas_stop_start_up(
    tmp_path: Path, database_url: str, provinces: str
) -> None:
    with pytest.raises(SettingsError, match="ALI_PROVINCES"):
        load_settings(ali_environ(database_url, tmp_path, ALI_PROVINCES=provinces))
