"""Reading slot values out of what a customer wrote: amounts, dates and names, normalised.

Each slot type has a *finder* (every value in a message, with where it was written) and the
normaliser behind it:

- ``amount``: ``£25.40``, ``89.99 euros``, ``EUR 12``, ``25 quid`` → ``{"amount": "25.40", "currency": "GBP"}``
  (numbers read by price-parser; a bare number takes the flow file's default currency);
- ``date``: ``yesterday``, ``last Friday``, ``on the 3rd of March``, ``12/03`` → ``"2026-03-03"``,
  resolved by dateparser against the conversation's clock and never in the future (a day-month
  later than today is last year's);
- ``name``: a merchant or a person, as written (the tagger finds them; a short answer to the
  question that asked for one is taken whole).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

SLOT_TYPES = ("amount", "date", "name")

_CURRENCY_WORDS = {
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP", "sterling": "GBP", "p": "GBP",
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "us$": "USD",
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_BEFORE = r"£|€|\$|US\$|\b(?:GBP|EUR|USD)\s?"
_AFTER = r"\s?(?:GBP|EUR|USD|pounds?|quid|euros?|dollars?|sterling)\b"
AMOUNT = re.compile(rf"(?:(?P<pre>{_BEFORE})\s?(?P<n1>{_NUMBER})(?:{_AFTER})?|(?<![\w.,])(?P<n2>{_NUMBER})(?P<post>{_AFTER}))",
                    re.I)
_BARE_NUMBER = re.compile(rf"(?<![\w.,/:-])(?P<n>{_NUMBER})(?![\w/:-]|\.\d)")

_MONTHS = ("january february march april may june july august september october november december")
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DAY = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?"
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
DATE = re.compile(
    r"\b(?:today|yesterday|the day before yesterday|this morning|this afternoon|this evening|last night|tonight"
    rf"|(?:last|this|on|past)\s+{_DAY}|{_DAY}(?:\s+(?:morning|afternoon|evening|night))?"
    r"|(?:a|one|two|three|four|five|six|seven|\d{1,2})\s+(?:days?|weeks?)\s+ago|last week|a week ago"
    rf"|(?:the\s+)?{_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?|{_MONTH}\s+(?:the\s+)?{_ORD}(?:,?\s+\d{{4}})?"
    r"|the\s+\d{1,2}(?:st|nd|rd|th)\b|\d{1,2}/\d{1,2}(?:/\d{2,4})?|\d{4}-\d{2}-\d{2})\b", re.I)
_NTH_ONLY = re.compile(r"^(?:on\s+)?the\s+(\d{1,2})(?:st|nd|rd|th)$", re.I)
_WEEKDAY_ONLY = re.compile(rf"^(?:on\s+|this\s+|past\s+)?({_DAY})(?:\s+(?:morning|afternoon|evening|night))?$", re.I)


@dataclass(frozen=True)
class Found:
    """A value read from a message: the text as written, where, and its normalised value."""

    text: str
    start: int
    end: int
    value: Any


def normalise_amount(text: str, default_currency: str = "GBP") -> dict[str, str] | None:
    """``"£25.40"`` → ``{"amount": "25.40", "currency": "GBP"}``; None when no amount is there."""
    from price_parser import Price

    match = AMOUNT.search(text) or _BARE_NUMBER.search(text)
    if match is None:
        return None
    number = match.group("n1") or match.group("n2") if "n1" in match.re.groupindex else match.group("n")
    price = Price.fromstring(number, decimal_separator=".")
    if price.amount is None:
        return None
    try:
        amount = Decimal(price.amount).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    if amount <= 0:
        return None
    marks = [match.groupdict().get("pre"), match.groupdict().get("post")]
    currency = next((_CURRENCY_WORDS[m.strip().lower()] for m in marks if m and m.strip().lower() in _CURRENCY_WORDS),
                    default_currency)
    return {"amount": f"{amount:.2f}", "currency": currency}


def find_amounts(text: str, default_currency: str = "GBP", *, bare: bool = False) -> list[Found]:
    """Amounts with a currency (``£5``, ``5 euros``); with ``bare``, plain numbers too (an answer
    to "how much was it?")."""
    found = [Found(m.group(0).strip(), m.start(), m.end(), normalise_amount(m.group(0), default_currency))
             for m in AMOUNT.finditer(text)]
    if bare and not found:
        # Digits inside a date ("20 March", "2 days ago") are not an amount.
        masked = DATE.sub(lambda m: " " * len(m.group(0)), text)
        found = [Found(m.group(0), m.start(), m.end(), normalise_amount(m.group(0), default_currency))
                 for m in _BARE_NUMBER.finditer(masked)]
    return [f for f in found if f.value is not None]


@functools.lru_cache(maxsize=4096)  # flows competing for one message read the same dates
def normalise_date(text: str, now: datetime) -> str | None:
    """A date as written, resolved against ``now``: ISO ``YYYY-MM-DD``, never after today."""
    import dateparser

    phrase = re.sub(r"\s+", " ", text.strip().lower())
    today = now.date()
    nth = _NTH_ONLY.match(phrase)
    if nth:  # "the 3rd": dateparser reads the day of the current month, even when that is ahead
        return _latest_day(today, int(nth.group(1)))
    weekday = _WEEKDAY_ONLY.match(phrase)
    if weekday:  # "on Tuesday": the last one (today's weekday means today)
        target = _weekday_number(weekday.group(1))
        if target is not None:
            return (today - timedelta(days=(today.weekday() - target) % 7)).isoformat()
    phrase = re.sub(r"^(?:on|the|past)\s+", "", phrase)
    phrase = re.sub(r"\bthe\s+(\d)", r"\1", phrase)
    settings = {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "past", "DATE_ORDER": "DMY",
                "RETURN_AS_TIMEZONE_AWARE": False}
    parsed = dateparser.parse(phrase, languages=["en"], settings=settings)
    if parsed is None:
        return None
    day = parsed.date()
    if day > today:  # "12 December" said in March: last year's
        try:
            day = day.replace(year=day.year - 1)
        except ValueError:
            return None
    return day.isoformat()


def find_dates(text: str, now: datetime) -> list[Found]:
    out = []
    for m in DATE.finditer(text):
        value = normalise_date(m.group(0), now)
        if value is not None:
            out.append(Found(m.group(0), m.start(), m.end(), value))
    return out


_NAME_CUE = r"(?:at|to|from|with|by|via|called|named|meant|not|paid|pay|owe[sd]?|refund(?:ed)?|says|said|shows|showed)"
_CAPITALISED = r"(?:[A-Z][\w'&.-]*|[A-Z]{2,})"
_NAME_RUN = re.compile(rf"(?:\b(?i:{_NAME_CUE})\s+(?:(?i:a|an|the)\s+)?|^\W*(?i:also|and|but|well|oh|so|ok|okay|hi|hello),?\s+)(?P<name>{_CAPITALISED}(?:\s+(?:&\s+)?{_CAPITALISED}){{0,3}})")
_NOT_NAMES = frozenset(
    "i i'm i've i'd i'll my me it it's its the a an this that there there's they he she we you your our "
    "hi hello hey yes no ok okay sorry thanks please also well so and but or can could would should will what "
    "when where why how which who is was do did does have has had not never just only still "
    "atm atms uk eu sepa swift iban bacs chaps pin id eur gbp usd us app bank card account visa mastercard "
    "monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow "
    "january february march april may june july august september october november december".split())


_NAME_BEFORE_VERB = re.compile(rf"(?P<name>{_CAPITALISED}(?:\s+(?:&\s+)?{_CAPITALISED}){{0,3}})\s+"
                               r"(?i:(?:still\s+|never\s+|have\s+|has\s+|haven'?t\s+|hasn'?t\s+|didn'?t\s+|needs?\s+to\s+|"
                               r"agreed\s+to\s+|promised\s+to\s+|(?:were|was)\s+supposed\s+to\s+|(?:have|has)\s+to\s+)*"
                               r"(?:charged|took|taken|owes?|said|says|refunded|refund|debited|billed|promised))\b")


def find_names(text: str) -> list[Found]:
    """Merchants or people the tagger missed: a run of capitalised words after "at", "to",
    "from"… or before "charged", "took", "owes"… ("Netflix took £10.99 twice"), without common
    words. A capitalised word alone is not enough: every sentence starts with one."""
    out: list[Found] = []
    matches = sorted([*_NAME_RUN.finditer(text), *_NAME_BEFORE_VERB.finditer(text)], key=lambda m: m.start("name"))
    for match in matches:
        if any(f.start <= match.start("name") < f.end for f in out):
            continue
        words = match.group("name").split()
        while words and words[0].lower().strip(".,'") in _NOT_NAMES:  # "The Post Office" → "Post Office"
            words = words[1:]
        while words and words[-1].lower().strip(".,'") in _NOT_NAMES:
            words = words[:-1]
        if not words:
            continue
        name = " ".join(words).strip(".,;:!?")
        start = text.find(name, match.start("name"))
        out.append(Found(name, start, start + len(name), name))
    return out


def normalise_name(text: str) -> str | None:
    """A merchant or person as written, without the words around an answer ("it was at Tesco.")."""
    name = re.sub(r"^\W*(?:it\s+was\s+|it'?s\s+|that\s+was\s+|the\s+merchant\s+(?:is|was)\s+|from\s+|at\s+|to\s+|"
                  r"with\s+|called\s+|by\s+)+", "", text.strip(), flags=re.I)
    name = re.sub(r"^(?:at|to|from)\s+", "", name, flags=re.I).strip(" .,!?;:'\"")
    if not name or len(name) > 80 or not re.search(r"[^\W\d_]", name):
        return None
    return name


def find_value(slot_type: str, text: str, now: datetime, default_currency: str = "GBP",
               *, answer: bool = False) -> list[Found]:
    """Values of ``slot_type`` in ``text``; ``answer`` when the text replies to the slot's own question."""
    if slot_type == "amount":
        return find_amounts(text, default_currency, bare=answer)
    if slot_type == "date":
        return find_dates(text, now)
    if slot_type == "name":
        if not answer or len(re.findall(r"\w+", text)) > 6:
            return []
        value = normalise_name(text)
        return [] if value is None else [Found(value, 0, len(text), value)]
    raise ValueError(f"unknown slot type {slot_type!r}; known: {', '.join(SLOT_TYPES)}")


def normalise(slot_type: str, text: str, now: datetime, default_currency: str = "GBP") -> Any:
    """The normalised value of an entity the tagger found (None when it does not read as one)."""
    if slot_type == "amount":
        return normalise_amount(text, default_currency)
    if slot_type == "date":
        return normalise_date(text, now)
    if slot_type == "name":
        return normalise_name(text)
    raise ValueError(f"unknown slot type {slot_type!r}; known: {', '.join(SLOT_TYPES)}")


def shown(slot_type: str, value: Any) -> str:
    """A value as the customer reads it back: ``£25.40``, ``Wednesday 4 March 2026``, ``Tesco``."""
    if slot_type == "amount":
        symbol = {"GBP": "£", "EUR": "€", "USD": "$"}.get(value["currency"])
        return f"{symbol}{value['amount']}" if symbol else f"{value['amount']} {value['currency']}"
    if slot_type == "date":
        day = date.fromisoformat(value)
        return f"{day:%A} {day.day} {day:%B %Y}"
    return str(value)


def _latest_day(today: date, day: int) -> str | None:
    year, month = today.year, today.month
    for _ in range(13):
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate is not None and candidate <= today:
            return candidate.isoformat()
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return None


def _weekday_number(word: str) -> int | None:
    word = word.lower()[:3]
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return names.index(word) if word in names else None
