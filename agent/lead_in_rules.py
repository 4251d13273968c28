"""What a lead-in may say: acknowledgement and empathy, never a claim.

The lead-in is the one sentence the small local model writes before the verbatim answer
(:mod:`agent.lead_in`). The grounding rules check its numbers, links and fees; these two rules
check its words, so that it cannot state something the answer does not ("That's not possible in
most countries.", "The card is a Mastercard.", "Yes, we do offer some ATM withdrawals."):

1. It must open as an acknowledgement: one of :data:`OPENINGS` ("Sorry", "I understand",
   "Thanks", "Happy to help", "I can help", "Good question", "Sure", "That sounds frustrating",
   ...). Facts open otherwise ("The exchange rate is ...", "It can vary ...", "That's not ...").
2. Wherever it is, a claim marker refuses it (:data:`CLAIM_MARKERS`, by kind): possibility
   ("not possible", "available", "allowed"), generalisation ("most", "always", "never",
   "usually", "depending on"), law and policy ("law", "policy", "country", "required"), the bank's
   practice ("we do", "we don't", "we only", "banks") and promised actions ("let me check").

Both rules refuse some harmless restatements ("Sorry your card never arrived."); the reply then
opens with the fixed greeting instead, which costs the customer nothing but warmth.
"""

from __future__ import annotations

import bisect
import itertools
import re

CLAIM = "makes a claim"  # every reason below carries these words, so reports can count them apart

_FEELINGS = ("unfortunate|frustrating|annoying|worrying|concerning|stressful|upsetting|disappointing|"
             "inconvenient|serious|nightmare|pain|hassle|shame|worry|tough|hard|difficult|awful|terrible|"
             "horrible|scary|alarming|confusing|understandable|great|good|wonderful|lovely|exciting|"
             "fantastic|brilliant|fair")
# Each opening is a sequence of slots, "|"-separated choices per slot ("" = the slot may be empty).
_OPENING_SLOTS: tuple[tuple[str, ...], ...] = (
    ("|i'm|i am|we're|we are", "|so|very|really|truly", "sorry"),
    ("|my", "apologies"),
    ("i apologise|i apologize",),
    ("i", "|can|completely|totally|fully|really", "understand|see|hear you|appreciate|know how|get it"),
    ("got it|understood|noted",),
    ("thanks|thank you|many thanks",),
    ("|i'm|i am|i'd be|i would be|i'll be|i will be|we're|we'd be", "|so|very|really", "happy|glad|pleased", "to"),
    ("i can help|here to help|i'm here to help|let me help|let's|let us",),
    ("good|great|fair|excellent", "question|point"),
    ("sure|sure thing|of course|certainly|absolutely|no problem|no worries|okay|ok|alright|all right|oh no|"
     "hello|hi|hey",),
    ("great|good|wonderful|fantastic", "news"),
    ("that's|that is|this is|it's|that sounds|that must be|that must have been|that seems", "|like",
     "|so|really|very|quite|such|truly|incredibly", "|a|an", _FEELINGS),
    ("what|how", "|a|an", _FEELINGS),
)


def _expand(slots: tuple[str, ...]) -> set[str]:
    return {" ".join(w for w in words if w) for words in itertools.product(*(s.split("|") for s in slots))}


OPENINGS: tuple[str, ...] = tuple(sorted(set().union(*map(_expand, _OPENING_SLOTS))))  # sorted: prefix search
_OPENING_SET = frozenset(OPENINGS)

CLAIM_MARKERS: dict[str, re.Pattern[str]] = {kind: re.compile(rf"\b(?:{rx})\b", re.I) for kind, rx in {
    "possibility": r"not possible|(?:im)?possible|not allowed|allowed|permitted|prohibited|forbidden|(?:un)?available|"
                   r"(?:un)?supported|(?:in)?eligible|there (?:is|are) no|there's no|no way",
    # "most recent" restates the customer; "most countries" generalises
    "generalisation": r"most(?! recent)|always|never|usually|generally|normally|typically|often|rarely|"
                      r"commonly|in general|everyone|every bank|all banks|many|vary|varies|depend(?:s|ing)? on|"
                      r"tends? to",
    # "must" as an obligation, not the empathy of "that must be frustrating"
    "law and policy": r"laws?|legal(?:ly)?|illegal|regulations?|regulat(?:ed|ory|or)|polic(?:y|ies)|"
                      r"terms and conditions|country|countries|government|jurisdiction|compliance|mandatory|"
                      r"required|requires?|requirements?|must(?! be| have been)|has to|have to",
    "the bank's practice": r"we (?:do|don't|do not|does|have|haven't|offer|support|allow|only|never|always|charge|"
                           r"require|accept|provide|are not|aren't|cannot|can't|won't|may|might|must|should)|"
                           r"banks|the bank (?:is|will|does|doesn't|can|cannot|can't|won't|has|only)|"
                           r"our (?:bank|policy|policies|rules|terms|system|fees?)",
    "promised action": r"(?:let me|i'll|i will|i'm going to|i am going to) (?:check|look|find|see|verify|confirm|"
                       r"review|investigate|fix|sort|cancel|block|refund|send|transfer)|"
                       r"i(?:'ve| have) (?:checked|found|fixed|cancelled|blocked)",
}.items()}


def _normal(text: str) -> str:
    """Lower case, straight apostrophes, single spaces, no leading quotes or punctuation."""
    text = re.sub(r"\s+", " ", text.replace("\u2019", "'").lower())
    return re.sub(r"^[^\w]+", "", text)


def opening(sentence: str) -> str | None:
    """The acknowledgement ``sentence`` opens with, or None when it opens otherwise."""
    text = _normal(sentence)
    for end in [m.start() for m in re.finditer(r"[^\w']", text)] + [len(text)]:
        if text[:end] in _OPENING_SET:
            return text[:end]
    return None


def may_still_open(partial: str) -> bool:
    """Whether a sentence still being written opens, or may yet open, as an acknowledgement."""
    text = _normal(partial)
    if not text or opening(text) is not None:
        return True
    at = bisect.bisect_left(OPENINGS, text)
    return at < len(OPENINGS) and OPENINGS[at].startswith(text)


def claim_reasons(sentence: str, *, partial: bool = False) -> list[str]:
    """Why ``sentence`` says more than an acknowledgement, one reason per rule broken (empty: it does not).

    With ``partial`` the sentence is still being written: its opening is judged only once no
    acknowledgement can start that way.
    """
    reasons = []
    if not (may_still_open(sentence) if partial else opening(sentence)):
        words = " ".join(_normal(sentence).split()[:3])
        reasons.append(f"lead-in {CLAIM}: not an acknowledgement (opens with {words!r})")
    text = sentence.replace("\u2019", "'")
    for kind, rx in CLAIM_MARKERS.items():
        if found := rx.search(text):
            reasons.append(f"lead-in {CLAIM}: {kind} ({found.group(0).lower()!r})")
    return reasons

