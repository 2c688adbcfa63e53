"""Settings: the ALI_* environment parsed once, with explicit types, into a frozen object."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet
from flask import Flask, current_app

from core.provinces import all_provinces

DEFAULT_PROVINCES = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
# Where create_app keeps the app's Settings; read them with get_settings().
EXTENSION_KEY = "ali.settings"
SCHEDULER_MODES = ("inprocess", "off")


class SettingsError(RuntimeError):
    """The environment cannot make a working Ali; the message says what to set."""


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())


def _bool(name: str, value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"ALI_{name} must be true or false, not {value!r}")


def _int(name: str, value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"ALI_{name} must be a whole number, not {value!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything Ali reads from its environment; built once by `load_settings`."""

    instance_path: Path
    database_url: str
    secret_key: str
    public_url: str
    encryption_keys: tuple[str, ...]
    production: bool = False
    twilio_account_sid: str = ""
    twilio_auth_tokens: tuple[str, ...] = ()
    twilio_from_number: str = ""
    twilio_api_base: str = ""
    scheduler: str = "inprocess"
    provinces: tuple[str, ...] = DEFAULT_PROVINCES
    session_idle_minutes: int = 30
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    secure_cookies: bool = True
    trusted_proxies: int = 0
    # Alert calls ring for less than a mobile takes to divert to voicemail.
    ring_timeout_seconds: int = 18
    # Raw texts and call recordings are kept this long, then purged (at Twilio too).
    raw_text_retention_days: int = 30
    # Past this many pages in an hour, an operator's further pages go out bundled.
    page_cap_per_hour: int = 30
    # Bearer token of GET /metrics; empty: the endpoint answers 404 (monitoring is opt-in).
    metrics_token: str = ""
    # Coordinators and admins must log in with a TOTP code too (default: in production only).
    require_2fa: bool = False
    # Closed cases are pseudonymised this many months after they were closed.
    retention_case_months: int = 24
    # Non-pertinent hand-offs keep only a tombstone this many days after that outcome.
    retention_not_pertinent_days: int = 90
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def telephony_backend(self) -> str:
        """Twilio when credentials are configured, else the sandbox outbox."""
        return "twilio" if self.twilio_account_sid else "sandbox"


def get_settings(app: Flask | None = None) -> Settings:
    """The Settings of ``app``, or of the current app (in a request, job or CLI command)."""
    settings: Settings = (app or current_app).extensions[EXTENSION_KEY]
    return settings


def _ring_timeout(value: str | None) -> int:
    seconds = _int("RING_TIMEOUT_SECONDS", value, 18)
    if not 5 <= seconds <= 60:
        raise SettingsError("ALI_RING_TIMEOUT_SECONDS must be between 5 and 60 seconds")
    return seconds


def _at_least_one(name: str, value: str | None, default: int, unit: str) -> int:
    number = _int(name, value, default)
    if number < 1:
        raise SettingsError(f"ALI_{name} must be 1 or more {unit}")
    return number


def _dev_secret(instance_path: Path, name: str, make: str) -> str:
    """Generate a development secret once and keep it in instance/ so restarts reuse it."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / name
    if path.exists():
        return path.read_text().strip()
    value = Fernet.generate_key().decode() if make == "fernet" else secrets.token_urlsafe(48)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def load_settings(
    environ: Mapping[str, str] | None = None, instance_path: Path | None = None
) -> Settings:
    """Parse ALI_* variables. In production every secret must be given explicitly."""
    env = os.environ if environ is None else environ
    instance = Path(env.get("ALI_INSTANCE_PATH") or instance_path or Path.cwd() / "instance")
    mode = env.get("ALI_ENV", "").strip().lower() or "development"
    if mode not in {"development", "production"}:
        # A typo ("prod") must not start a production server with dev secrets and the sandbox.
        raise SettingsError(f"ALI_ENV must be development or production, not {mode!r}")
    production = mode == "production"

    if production:
        # Twilio is required too: a production Ali writing alerts to the sandbox pages nobody.
        required = [
            "ALI_DATABASE_URL",
            "ALI_SECRET_KEY",
            "ALI_PUBLIC_URL",
            "ALI_ENCRYPTION_KEYS",
            "ALI_TWILIO_ACCOUNT_SID",
            "ALI_TWILIO_AUTH_TOKEN",
            "ALI_TWILIO_FROM_NUMBER",
        ]
        missing = [name for name in required if not env.get(name, "").strip()]
        if missing:
            raise SettingsError("Ali cannot start in production: set " + ", ".join(missing) + ".")

    database_url = env.get("ALI_DATABASE_URL", "").strip()
    if not database_url:
        instance.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{instance / 'ali.sqlite3'}"
    secret_key = env.get("ALI_SECRET_KEY", "").strip() or _dev_secret(
        instance, "dev-secret-key", "token"
    )
    keys = _split(env.get("ALI_ENCRYPTION_KEYS")) or (
        _dev_secret(instance, "dev-encryption-key", "fernet"),
    )
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise SettingsError(
                "ALI_ENCRYPTION_KEYS must be comma-separated Fernet keys "
                "(generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None

    scheduler = env.get("ALI_SCHEDULER", "inprocess").strip().lower() or "inprocess"
    if scheduler not in SCHEDULER_MODES:
        raise SettingsError(f"ALI_SCHEDULER must be one of {', '.join(SCHEDULER_MODES)}")

    provinces = tuple(p.upper() for p in _split(env.get("ALI_PROVINCES"))) or DEFAULT_PROVINCES
    unknown = [p for p in provinces if p not in all_provinces()]
    if unknown:
        # A typo here would silently make every case out_of_area.
        raise SettingsError(
            f"ALI_PROVINCES must list province siglas (e.g. BS,BG); unknown: {', '.join(unknown)}"
        )
    trusted_proxies = _int("TRUSTED_PROXIES", env.get("ALI_TRUSTED_PROXIES"), 0)
    if trusted_proxies < 0:
        raise SettingsError("ALI_TRUSTED_PROXIES must be 0 or more (the proxies in front of Ali)")
    public_url = (env.get("ALI_PUBLIC_URL", "").strip() or "http://127.0.0.1:5000").rstrip("/")
    twilio_account_sid = env.get("ALI_TWILIO_ACCOUNT_SID", "").strip()
    twilio_auth_tokens = _split(env.get("ALI_TWILIO_AUTH_TOKEN"))
    if not twilio_auth_tokens and not twilio_account_sid and not production:
        # The sandbox page signs the replies it simulates like Twilio would, so they go
        # through the real signature check; production always has Twilio's own token.
        twilio_auth_tokens = (_dev_secret(instance, "dev-twilio-auth-token", "token"),)

    return Settings(
        instance_path=instance,
        database_url=database_url,
        secret_key=secret_key,
        public_url=public_url,
        encryption_keys=keys,
        production=production,
        twilio_account_sid=twilio_account_sid,
        twilio_auth_tokens=twilio_auth_tokens,
        twilio_from_number=env.get("ALI_TWILIO_FROM_NUMBER", "").strip(),
        twilio_api_base=env.get("ALI_TWILIO_API_BASE", "").strip().rstrip("/"),
        scheduler=scheduler,
        provinces=provinces,
        session_idle_minutes=_int("SESSION_IDLE_MINUTES", env.get("ALI_SESSION_IDLE_MINUTES"), 30),
        login_max_failures=_int("LOGIN_MAX_FAILURES", env.get("ALI_LOGIN_MAX_FAILURES"), 5),
        login_lockout_minutes=_int(
            "LOGIN_LOCKOUT_MINUTES", env.get("ALI_LOGIN_LOCKOUT_MINUTES"), 15
        ),
        trusted_proxies=trusted_proxies,
        ring_timeout_seconds=_ring_timeout(env.get("ALI_RING_TIMEOUT_SECONDS")),
        raw_text_retention_days=_at_least_one(
            "RAW_TEXT_RETENTION_DAYS", env.get("ALI_RAW_TEXT_RETENTION_DAYS"), 30, "days"
        ),
        # Zero would bundle every page, the first alert of a case included.
        page_cap_per_hour=_at_least_one(
            "PAGE_CAP_PER_HOUR", env.get("ALI_PAGE_CAP_PER_HOUR"), 30, "pages per operator per hour"
        ),
        metrics_token=env.get("ALI_METRICS_TOKEN", "").strip(),
        require_2fa=_bool("REQUIRE_2FA", env.get("ALI_REQUIRE_2FA"), production),
        retention_case_months=_at_least_one(
            "RETENTION_CASE_MONTHS", env.get("ALI_RETENTION_CASE_MONTHS"), 24, "months"
        ),
        retention_not_pertinent_days=_at_least_one(
            "RETENTION_NOT_PERTINENT_DAYS", env.get("ALI_RETENTION_NOT_PERTINENT_DAYS"), 90, "days"
        ),
        secure_cookies=_bool(
            "SECURE_COOKIES", env.get("ALI_SECURE_COOKIES"), public_url.startswith("https://")
        ),
    )
