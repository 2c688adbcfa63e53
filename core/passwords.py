"""What a new password must be: not blank, long enough, and not guessable by the offline
estimator zxcvbn (common passwords, keyboard walks, dates, names, the person's own e-mail).
Every place a person sets a password asks here; passwords Ali generates are random
(core.users.generate_password) and strong by construction."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from zxcvbn import zxcvbn

MIN_PASSWORD_LENGTH = 12
# zxcvbn's scale: 3 is "safely unguessable" (about 10^8 guesses or more) for an online attack.
MIN_SCORE = 3
# zxcvbn's matching grows quickly with length; what follows the first 100 characters only adds.
_ESTIMATED_PREFIX = 100
# Words anyone would try against this service.
_SERVICE_WORDS = ("ali", "hotline", "numero verde", "tratta", "antitratta", "reperibile")
_WORDS = re.compile(r"[^\W\d_]{3,}")


class Weakness(StrEnum):
    BLANK = "blank"
    SHORT = "short"
    GUESSABLE = "guessable"


class WeakPassword(ValueError):
    """A password refused; ``weakness`` lets a page say why in the user's language."""

    def __init__(self, weakness: Weakness) -> None:
        super().__init__(MESSAGES[weakness])
        self.weakness = weakness


MESSAGES = {
    Weakness.BLANK: "the password cannot be only spaces",
    Weakness.SHORT: f"the password needs at least {MIN_PASSWORD_LENGTH} characters",
    Weakness.GUESSABLE: "the password is too easy to guess (a common password, a name, "
    "a date or a keyboard pattern): choose a longer one, e.g. a few unrelated words",
}


def weakness(password: str, *, personal: Iterable[str] = ()) -> Weakness | None:
    """Why ``password`` is refused, or None. ``personal``: the person's e-mail and name,
    split into words, which the estimator treats as known to an attacker."""
    if not password.strip():
        return Weakness.BLANK
    if len(password) < MIN_PASSWORD_LENGTH:
        return Weakness.SHORT
    inputs = list(_SERVICE_WORDS)
    for given in personal:
        text = (given or "").lower()
        inputs.extend([text, text.split("@")[0], *_WORDS.findall(text)])
    if zxcvbn(password[:_ESTIMATED_PREFIX], user_inputs=inputs)["score"] < MIN_SCORE:
        return Weakness.GUESSABLE
    return None


def check_new_password(password: str, *, personal: Iterable[str] = ()) -> None:
    """WeakPassword unless ``password`` may be set."""
    found = weakness(password, personal=personal)
    if found is not None:
        raise WeakPassword(found)
