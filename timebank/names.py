"""The one rule for every name a person types (participant, timebank and category names): what
is shown to others must be what it looks like. A pure module, used by every schema that takes
a name."""

from __future__ import annotations

import unicodedata

# Bidirectional controls: they reorder what follows them, so a name could display as another.
# The name checks of migration 0012 refuse the same characters in the database.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Characters that show nothing by themselves: Unicode spaces, format characters (zero-width
# joiners, soft hyphens, tags …), and the few invisible letters and fillers.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cf", "Cc", "Cn", "Co", "Cs", "Mn", "Me"})
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u180e")


def clean_name(value: str, limit: int) -> str:
    """``value`` in NFC without the spaces around it, or ValueError saying what is wrong: a
    control character (NUL included) or a bidirectional control, nothing visible, or more
    than ``limit`` characters."""
    for char in value:
        if char in BIDI_CONTROLS:
            raise ValueError("must not contain direction-changing characters")
        if unicodedata.category(char) == "Cc":
            raise ValueError("must not contain control characters")
    name = unicodedata.normalize("NFC", value).strip()
    if not any(_visible(char) for char in name):
        raise ValueError("needs at least one visible character")
    if len(name) > limit:
        raise ValueError(f"needs 1 to {limit} characters (not counting spaces around it)")
    return name


def _visible(char: str) -> bool:
    return unicodedata.category(char) not in _INVISIBLE_CATEGORIES and char not in _INVISIBLE
