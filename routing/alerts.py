"""What an alert says, in the operator's language: SMS texts and spoken prompts.

No personal data, whatever the case holds (design §6): the reference, the province, the
urgency, where the case came from, and the link to its alert page behind login.
"""

from __future__ import annotations

from flask_babel import force_locale, gettext

from core.config import get_settings
from core.models import User
from core.provinces import lookup_province
from routing.models import Channel, Urgency

VOICE_LANGUAGE = {"it": "it-IT", "en": "en-GB"}


def _(message: str, **values: object) -> str:
    return str(gettext(message, **values))


def locale_of(user: User) -> str:
    return user.locale if user.locale in VOICE_LANGUAGE else "it"


def voice_language(user: User) -> str:
    return VOICE_LANGUAGE[locale_of(user)]


def case_link(reference: str) -> str:
    return f"{get_settings().public_url}/cases/{reference}"


def _urgency_word(urgency: Urgency) -> str:
    words = {
        Urgency.EMERGENCY: _("EMERGENCY"),
        Urgency.URGENT: _("URGENT"),
        Urgency.ORDINARY: _("ORDINARY"),
    }
    return words[urgency]


def _origin(channel: Channel) -> str:
    origins = {
        Channel.WEBHOOK: _("new case from the Numero Verde"),
        Channel.PHONE: _("new case from a partner's call"),
        Channel.SMS: _("new case from a partner's SMS"),
        Channel.MANUAL: _("new case entered by an operator"),
    }
    return origins[channel]


def _province_name(sigla: str | None) -> str:
    found = lookup_province(sigla) if sigla else None
    return found.name if found is not None else _("no province (triage)")


def alert_sms(user: User, *, reference: str, urgency: Urgency, channel: Channel) -> str:
    with force_locale(locale_of(user)):
        return _(
            "ALI %(reference)s %(urgency)s — %(origin)s. Reply 1 to accept, 2 to decline. %(link)s",
            reference=reference,
            urgency=_urgency_word(urgency),
            origin=_origin(channel),
            link=case_link(reference),
        )


def unanswered_sms(user: User, *, reference: str, urgency: Urgency) -> str:
    with force_locale(locale_of(user)):
        return _(
            "ALI %(reference)s %(urgency)s: NOBODY has accepted it yet. Reply 1 to accept. "
            "%(link)s",
            reference=reference,
            urgency=_urgency_word(urgency),
            link=case_link(reference),
        )


def taken_sms(user: User, *, reference: str, taker: str) -> str:
    with force_locale(locale_of(user)):
        return _("ALI %(reference)s: taken by %(name)s.", reference=reference, name=taker)


def follow_up_sms(user: User, *, reference: str) -> str:
    """Two hours after acceptance with no contact recorded: a nudge, nothing about the case."""
    with force_locale(locale_of(user)):
        return _(
            "ALI %(reference)s: accepted 2 hours ago, not yet in contact. Update the case: "
            "%(link)s",
            reference=reference,
            link=case_link(reference),
        )


def new_text_sms(user: User, *, reference: str) -> str:
    """A new text on a case the operator accepted: the reference and the link, nothing more."""
    with force_locale(locale_of(user)):
        return _(
            "ALI %(reference)s: new message on the case %(link)s",
            reference=reference,
            link=case_link(reference),
        )


def bundle_sms(user: User, *, alerts_open: list[str], taken: list[str]) -> str:
    """The SMS that stands for the pages past the operator's hourly cap: references only."""
    with force_locale(locale_of(user)):
        parts = []
        if alerts_open:
            parts.append(
                _(
                    "ALI: more alerts past your hourly limit: %(references)s. Reply OK and a "
                    "reference to accept (e.g. OK BS-42).",
                    references=", ".join(alerts_open),
                )
            )
        if taken:
            parts.append(_("ALI: already taken: %(references)s.", references=", ".join(taken)))
        parts.append(f"{get_settings().public_url}/cases")
        return " ".join(parts)


def page_cap_notice(admin: User, *, operator: User, cap: int) -> str:
    """To the admins, once per episode: an operator is past the hourly cap."""
    with force_locale(locale_of(admin)):
        return _(
            "ALI: %(name)s has had %(cap)s alerts in the last hour; further texts go out "
            "bundled in one SMS every 5 minutes (calls still ring). Check who else can take "
            "cases.",
            name=operator.display_name,
            cap=cap,
        )


def alert_prompt(user: User, *, reference: str, urgency: Urgency, province: str | None) -> str:
    with force_locale(locale_of(user)):
        return _(
            "Ali alert, %(urgency)s, province of %(province)s, case %(reference)s. "
            "Press 1 to accept, 2 to decline.",
            urgency=_urgency_word(urgency),
            province=_province_name(province),
            # Spoken one character at a time: "B S 2 0 2 6 0 0 4 2".
            reference=" ".join(c for c in reference if c != "-"),
        )


def machine_sentence(user: User) -> str:
    with force_locale(locale_of(user)):
        return _("This is Ali with an alert for you. Please read your messages.")


def accepted_sentence(user: User) -> str:
    with force_locale(locale_of(user)):
        return _("Case accepted, it is yours. Thank you.")


def declined_sentence(user: User) -> str:
    with force_locale(locale_of(user)):
        return _("Declined. The next person is being alerted. Goodbye.")


def taken_sentence(user: User, *, taker: str) -> str:
    with force_locale(locale_of(user)):
        return _("This case has already been taken by %(name)s. Goodbye.", name=taker)


def no_key_sentence(user: User) -> str:
    with force_locale(locale_of(user)):
        return _("No key pressed. Goodbye.")


# --- replies to an operator's SMS --------------------------------------------------------------


def accepted_reply(user: User, *, reference: str, others: int) -> str:
    with force_locale(locale_of(user)):
        text = _(
            "ALI %(reference)s: accepted, it is yours. %(link)s",
            reference=reference,
            link=case_link(reference),
        )
        return text + _more_open(others)


def declined_reply(user: User, *, reference: str, others: int) -> str:
    with force_locale(locale_of(user)):
        text = _(
            "ALI %(reference)s: declined, the next person is being alerted.", reference=reference
        )
        return text + _more_open(others)


def _more_open(others: int) -> str:
    if not others:
        return ""
    return " " + _(
        "You have %(count)s more open alerts: add the reference to choose (e.g. OK BS-42).",
        count=others,
    )


def taken_reply(user: User, *, reference: str, taker: str, yours: bool) -> str:
    with force_locale(locale_of(user)):
        if yours:
            return _("ALI %(reference)s is already yours.", reference=reference)
        return _(
            "ALI %(reference)s has already been taken by %(name)s.", reference=reference, name=taker
        )


def no_open_alert_reply(user: User) -> str:
    with force_locale(locale_of(user)):
        return _("ALI: no open alert for you.")


def help_reply(user: User) -> str:
    with force_locale(locale_of(user)):
        return _(
            "ALI: reply 1 or OK to accept your latest alert, 2 or NO to decline. Add the case "
            "reference to choose one (e.g. OK BS-42)."
        )
