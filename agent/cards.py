"""Payment card numbers masked before anything else sees the message.

A card number (13 to 19 digits, single spaces or dashes allowed between digits, Luhn-valid) is
replaced by ``•••• 1111`` (its last four digits). Long numbers that fail the Luhn check (order
numbers, IBAN digits, phone numbers) are left alone: masking them would hide what the customer
needs help with.
"""

from __future__ import annotations

import re

MASK = "•••• "
# Digits with at most one space or dash between them; not glued to other digits on either side.
_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")


def luhn_valid(digits: str) -> bool:
    """The Luhn check digit test on a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_cards(text: str) -> tuple[str, int]:
    """``text`` with each card number masked, and how many were masked."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        digits = re.sub(r"[ -]", "", match.group(0))
        if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
            return match.group(0)
        count += 1
        return MASK + digits[-4:]

    return _CANDIDATE.sub(replace, text or ""), count


CARD_WARNING = ("For your security, please never share your full card number in a chat; "
                "I've hidden it, and we'll only ever need the last four digits.")
