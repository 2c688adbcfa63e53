"""Settings: typed parsing, production refuses to start without its secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import DEFAULT_PROVINCES, SettingsError, load_settings


def test_production_without_secrets_names_every_missing_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"ALI_ENV": "production"}, tmp_path)
    message = str(error.value)
    for name in (
        "ALI_DATABASE_URL",
        "ALI_SECRET_KEY",
        "ALI_PUBLIC_URL",
        "ALI_ENCRYPTION_KEYS",
        "ALI_TWILIO_ACCOUNT_SID",
        "ALI_TWILIO_AUTH_TOKEN",
        "ALI_TWILIO_FROM_NUMBER",
    ):
        assert name in message


def test_embedded_default_generates_dev_secrets_once(tmp_path: Path) -> None:
    first = load_settings({}, tmp_path)
    second = load_settings({}, tmp_path)
    assert first.database_url == f"sqlite:///{tmp_path / 'ali.sqlite3'}"
    assert first.secret_key == second.secret_key
    assert first.encryption_keys == second.encryption_keys
    assert first.telephony_backend == "sandbox"
    assert first.scheduler == "inprocess"
    assert first.provinces == DEFAULT_PROVINCES
    assert (tmp_path / "dev-secret-key").stat().st_mode & 0o777 == 0o600


def test_lists_and_rotation_are_parsed(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ALI_TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
            "ALI_TWILIO_AUTH_TOKEN": "new, old",
            "ALI_PROVINCES": "bs;bg",
            "ALI_SCHEDULER": "off",
        },
        tmp_path,
    )
    assert settings.twilio_auth_tokens == ("new", "old")
    assert settings.provinces == ("BS", "BG")
    assert settings.telephony_backend == "twilio"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALI_SCHEDULER", "sometimes"),
        ("ALI_ENCRYPTION_KEYS", "not-a-fernet-key"),
        ("ALI_SESSION_IDLE_MINUTES", "ten"),
        ("ALI_TRUSTED_PROXIES", "-1"),
        ("ALI_ENV", "prod"),
        ("ALI_RAW_TEXT_RETENTION_DAYS", "0"),
        ("ALI_RAW_TEXT_RETENTION_DAYS", "a month"),
        ("ALI_PAGE_CAP_PER_HOUR", "0"),
        ("ALI_PAGE_CAP_PER_HOUR", "many"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value}, tmp_path)


def test_the_page_cap_defaults_to_30_an_hour(tmp_path: Path) -> None:
    assert load_settings({}, tmp_path).page_cap_per_hour == 30
    assert load_settings({"ALI_PAGE_CAP_PER_HOUR": "50"}, tmp_path).page_cap_per_hour == 50
