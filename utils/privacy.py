"""Privacy controls: find and scrub personal data before chats become training data.

Notebook 09 trains the next model version on what users typed. Anything a user
typed about themselves -- an e-mail address, a phone number, their name -- would
then sit in the training set, and a model can repeat its training data word for
word. So the chats are *scrubbed* first: ``find_pii`` marks each piece of
personal data as a ``Span`` and ``scrub`` replaces it with a placeholder
(``[EMAIL]``, ``[PHONE]``, ``[NAME]``).

A scrubber is a classifier and is measured like one. ``pii_test_cases`` builds a
labelled test set from templates, random names, digits and formats -- the
generator knows where it put every piece of personal data, without using the
scrubber's regular expressions -- mixed with *look-alikes* that must be left
alone: versions, dates, times, prices, order numbers, sums, and the TinyWorld
characters (story characters, not users). ``evaluate_scrubber`` reports
precision (how much of what was removed was personal) and recall (how much
personal data was removed). ``find_pii_weak`` is the negative control: the
one-regex scrubber people write first, which misses most phone formats.

**The phone rule.** A phone is a run of digit groups joined by single spaces,
dashes or dots, optionally with a ``(area)`` group, that is not glued to a longer
token (a letter, ``$ € £ # / @``, or a ``.``/``,``/``:``/``-`` next to a digit) and
is not right after an ID word (``order``, ``ID``, ``ticket``, ``ISBN``, ``invoice``,
``ref``, ``account``, ``tracking``, ``serial``, ``SKU``, ``booking``, optionally
followed by "number"/"no."). It is

* *international*: a leading ``+`` or ``00``, then 8 to 15 digits in at most
  6 groups, the last of at least 2 digits (``+44 20 7946 0958``, ``+447700900123``);
* *North American*: ``ddd ddd dddd`` with any separators or ``(ddd)``, optionally
  after a ``1`` (``(555) 123-4567``, ``1-555-123-4567``);
* *national with a trunk 0*: starts with ``0``, 10 or 11 digits, at most 5 groups
  of at least 2 digits (``07700 900123``, ``01 23 45 67 89``);
* *bare*: 10 digits not starting with 1 (a 1 is a Unix time), or 11 starting with 0 or 1.

So dates and versions (at most 8 digits, or groups ending in one digit), ISBNs
(end in a one-digit check group, or after "ISBN"), IP addresses (four dotted
groups of at most 3 digits) and lists of small numbers (no phone shape) are left
alone. Left unhandled on purpose: 7-digit local numbers (``555-1234``) and 9-digit
national numbers without a trunk 0 -- too close to ordinary numbers.

**The name rule.** A name is what a user says about *themselves*: 1 to 4
capitalised words right after "my name is", "my name's", "I'm", "I am",
"call me" (a title like "Dr." is skipped), before "speaking"/"here" in "this is
Ada speaking", or "Ada here" opening the message. A word from ``NOT_NAMES``
("I'm Sorry", "call me Tomorrow") or a possessive ("I'm Mia's friend") is not a
name. Every later whole-word use of an introduced name (and of its first word)
is a span too, as is every whole-word, case-sensitive use of a ``known_names``
entry (the user's registered name). Characters mentioned in the third person
("Tell me a story about Leo.") are not the user and are left alone.
"""
from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from utils.world import HE_NAMES, SHE_NAMES, UNKNOWN_NAMES

KINDS = ("email", "phone", "name")
PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "name": "[NAME]"}


@dataclass(frozen=True, order=True)
class Span:
    """Characters ``text[start:end]`` are personal data of this ``kind``."""

    start: int
    end: int
    kind: str

    def text_in(self, text: str) -> str:
        return text[self.start:self.end]


# ----------------------------------------------------------------------------
# E-mail addresses
# ----------------------------------------------------------------------------
EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_%+-])?"
                   r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])")


def _emails(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), "email") for m in EMAIL.finditer(text)]


# ----------------------------------------------------------------------------
# Phone numbers (the rule is in the module docstring)
# ----------------------------------------------------------------------------
#: A run of digit groups; which part of it (if any) is a phone is decided in Python.
DIGIT_RUN = re.compile(r"\+?\(?\d+\)?(?:[ .\-]?\(?\d+\)?)*")
DIGIT_GROUP = re.compile(r"\d+")
ID_CONTEXT = re.compile(r"(?:\b(?:id|order|ticket|isbn|invoice|ref|reference|account|acct|tracking|serial"
                        r"|sku|booking|confirmation)|#)\W{0,3}(?:(?:no|nr|num|number)\b\.?\W{0,3})?$", re.I)
GLUED_BEFORE = set("#$€£¥/@+")
GLUED_AFTER = set("%@/$€£¥")


def _phones(text: str) -> list[Span]:
    spans = []
    for run in DIGIT_RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in DIGIT_GROUP.finditer(run.group())]
        spans += _phones_in_run(text, groups, run.start())
    return spans


def _phones_in_run(text: str, groups: list[tuple[int, int]], run_start: int) -> list[Span]:
    """The longest phones made of consecutive groups, left to right."""
    spans, i = [], 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            span = _phone_span(text, groups[i:j], run_start)
            if span:
                spans.append(span)
                i = j - 1
                break
        i += 1
    return spans


def _phone_span(text: str, groups: list[tuple[int, int]], run_start: int) -> Span | None:
    start, end = groups[0][0], groups[-1][1]
    if start > run_start and text[start - 1] == "(":
        start -= 1
    plus = start > run_start and text[start - 1] == "+"
    start -= plus
    unclosed = text[start:end].count("(") > text[start:end].count(")")
    end += unclosed and text[end:end + 1] == ")"
    digits = [text[a:b] for a, b in groups]
    separators = [text[groups[k][1]:groups[k + 1][0]] for k in range(len(groups) - 1)]
    if not (_phone_shape(digits, plus, separators) and _stands_alone(text, start, end)):
        return None
    return Span(start, end, "phone")


def _stands_alone(text: str, start: int, end: int) -> bool:
    """Not part of a longer token (a word, a price, a date, a time) and not an ID."""
    padded = f"  {text}  "  # so that the neighbours of the first and last characters exist
    before2, before = padded[start:start + 2]
    after, after2 = padded[end + 2:end + 4]
    if before.isalnum() or before == "_" or before in GLUED_BEFORE:
        return False
    if (before in ".,-" and before2.isalnum()) or (before == ":" and before2.isdigit()):
        return False
    if after.isalnum() or after == "_" or after in GLUED_AFTER or (after in ".,:-" and after2.isdigit()):
        return False
    return not ID_CONTEXT.search(text[max(0, start - 40):start])


def _phone_shape(groups: list[str], plus: bool, separators: list[str]) -> bool:
    digits = "".join(groups)
    if plus or (groups[0].startswith("00") and len(groups[0]) > 2):
        national = digits if plus else digits[2:]
        return 8 <= len(national) <= 15 and len(groups) <= 6 and (len(groups) == 1 or len(groups[-1]) >= 2)
    if len(groups) > 5 or len(groups[-1]) < 2 or _dotted_quad(groups, separators):
        return False
    lengths = [len(g) for g in groups]
    if lengths == [3, 3, 4] or (lengths == [1, 3, 3, 4] and groups[0] == "1"):
        return True
    if len(groups) == 1:
        return (len(digits) == 10 and digits[0] != "1") or (len(digits) == 11 and digits[0] in "01")
    return digits[0] == "0" and 10 <= len(digits) <= 11 and min(lengths) >= 2


def _dotted_quad(groups: list[str], separators: list[str]) -> bool:
    """An IPv4 address: 192.168.1.20."""
    return len(groups) == 4 and all(s == "." for s in separators) and all(len(g) <= 3 for g in groups)


# ----------------------------------------------------------------------------
# Names a user gives for themselves
# ----------------------------------------------------------------------------
#: Capitalised words that follow "I'm" / "call me" but are not names.
NOT_NAMES = frozenset("""
A An The Not So Very Just Really Also Still Only Here There Back Done Going Ready Good Fine Okay Ok OK
Happy Sad Sure Sorry Glad Tired Busy Free Hungry Afraid New Old Looking Trying Working Feeling Getting
Learning Interested Available Late Early Home In On At From With About Into Out Up Down Off Over Now
Then Later Soon Today Tomorrow Tonight Yesterday Again Anytime Maybe Please Thanks Thank And But Or If
When Because It This That What Who Your My Our Their His Her You We They He She I Me Him Them Always
Never Actually Totally Quite Pretty Almost Currently Stuck Lost Confused Curious Excited Worried
Monday Tuesday Wednesday Thursday Friday Saturday Sunday Whenever Anything Something Nothing Everyone
English British American Canadian French German Spanish Italian Chinese Japanese Indian Mexican
Brazilian Australian Irish Scottish Dutch Polish Korean Russian Nigerian Kenyan Swedish Turkish
""".split())
NAME_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*")
TITLE = re.compile(r"(?:Dr|Mr|Mrs|Ms|Mx|Prof)\.?\s+")
INTRO = re.compile(r"\b(?:my\s+name\s+is|my\s+name['’]s|i['’]m|i\s+am|call\s+me)\s+", re.I)
THIS_IS = re.compile(r"\bthis\s+is\s+", re.I)
SPEAKING = re.compile(r"\s+(?:speaking|here)\b", re.I)
OPENING = re.compile(r"^\s*(?:(?:hi|hello|hey|hiya)\b[\s,!.:-]*)?", re.I | re.M)
HERE_AFTER = re.compile(r"\s+here\s*(?:[,.!;:\-–—]|$)", re.I)
MAX_NAME_WORDS = 4


def _name_at(text: str, pos: int) -> tuple[int, int] | None:
    """``(start, end)`` of the capitalised name words starting at ``pos`` (after a title), if any."""
    title = TITLE.match(text, pos)
    start = end = title.end() if title else pos
    for _ in range(MAX_NAME_WORDS):
        if end > start and text[end:end + 1] != " ":
            break
        word = NAME_WORD.match(text, end + (end > start))
        if not word or not _name_like(word.group()):
            break
        end = word.end()
    return (start, end) if end > start else None


def _name_like(word: str) -> bool:
    possessive = word.endswith(("'s", "’s"))
    return word[0].isupper() and word not in NOT_NAMES and not possessive


def _introduced_names(text: str) -> list[tuple[int, int]]:
    found = [_name_at(text, m.end()) for m in INTRO.finditer(text)]
    for m in THIS_IS.finditer(text):
        name = _name_at(text, m.end())
        found.append(name if name and SPEAKING.match(text, name[1]) else None)
    for m in OPENING.finditer(text):
        name = _name_at(text, m.end())
        found.append(name if name and HERE_AFTER.match(text, name[1]) else None)
    return [f for f in found if f]


def _whole_word(text: str, phrase: str) -> list[tuple[int, int]]:
    """Where ``phrase`` stands as whole words: not inside "Anne-Marie" or "O'Brien"; "Ada's" is fine."""
    pattern = re.compile(rf"(?<!\w)(?<!\w[-'’]){re.escape(phrase)}(?!\w|-\w|['’](?!s\b)\w)")
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def _names(text: str, known_names) -> list[Span]:
    introduced = _introduced_names(text)
    phrases = {text[a:b] for a, b in introduced} | {text[a:b].split()[0] for a, b in introduced}
    phrases |= {n.strip() for n in known_names if n and n.strip()}
    places = set(introduced) | {p for phrase in phrases for p in _whole_word(text, phrase)}
    return [Span(a, b, "name") for a, b in places]


# ----------------------------------------------------------------------------
# The scrubber
# ----------------------------------------------------------------------------
def find_pii(text: str, known_names=()) -> list[Span]:
    """Sorted, non-overlapping spans of e-mails, phones and self-given names in ``text``.

    ``known_names``: names known to be the user's (their account name): found wherever
    they appear as whole words, case-sensitively. Where spans overlap, an e-mail beats
    a phone beats a name, then the longer span wins.
    """
    return _without_overlaps(_emails(text) + _phones(text) + _names(text, known_names))


def _without_overlaps(spans: list[Span]) -> list[Span]:
    kept = []
    for span in sorted(set(spans), key=lambda s: (KINDS.index(s.kind), s.start - s.end, s.start)):
        if all(span.end <= k.start or k.end <= span.start for k in kept):
            kept.append(span)
    return sorted(kept)


def scrub(text: str, known_names=(), find=find_pii) -> str:
    """``text`` with each personal-data span replaced by its placeholder."""
    for span in reversed(find(text, known_names)):
        text = text[:span.start] + PLACEHOLDERS[span.kind] + text[span.end:]
    return text


WEAK_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
WEAK_PHONE = re.compile(r"\b\d{3}-\d{3}-\d{4}\b")


def find_pii_weak(text: str, known_names=()) -> list[Span]:
    """The negative control: e-mails, and phones only as ``ddd-ddd-dddd``; no names."""
    spans = [Span(m.start(), m.end(), "email") for m in WEAK_EMAIL.finditer(text)]
    spans += [Span(m.start(), m.end(), "phone") for m in WEAK_PHONE.finditer(text)]
    return _without_overlaps(spans)


# ----------------------------------------------------------------------------
# Measuring a scrubber
# ----------------------------------------------------------------------------
class Case(NamedTuple):
    """One labelled message: ``pii`` lists each ``(kind, value)`` occurrence in ``text``.

    ``family`` says what the case tests ("phone:uk_intl", "neg_date"; "email+neg_time": an
    e-mail followed by a look-alike time);
    ``known_names`` is what the scrubber is told about the user.
    """

    text: str
    pii: tuple = ()
    family: str = ""
    known_names: tuple = ()


EDGE_JUNK = " \t\n.,;:!?\"'()[]<>"


def _normal(value: str) -> str:
    return value.strip(EDGE_JUNK)


def evaluate_scrubber(find, cases) -> dict:
    """Value-level precision and recall of ``find``, per kind and overall, and its mistakes.

    ``cases``: ``Case`` rows or plain ``(text, [(kind, value), ...])`` pairs. A
    predicted span is a true positive when its text (edges stripped of spaces and
    punctuation) equals an unmatched labelled value of the same kind; each labelled
    occurrence matches at most one span. ``false_positive_cases``: cases without
    personal data where ``find`` marked anything (of ``negative_cases``).
    """
    counts = {kind: Counter() for kind in KINDS}
    mistakes, false_positive_cases, negative_cases = [], 0, 0
    for case in cases:
        text, labels = case[0], list(case[1])
        known = case[3] if len(case) > 3 else ()
        predicted = [(s.kind, s.text_in(text)) for s in find(text, known)]
        missed, spurious = _unmatched(labels, predicted), _unmatched(predicted, labels)
        for kind in KINDS:
            fn = sum(k == kind for k, _ in missed)
            fp = sum(k == kind for k, _ in spurious)
            counts[kind].update(tp=sum(k == kind for k, _ in labels) - fn, fp=fp, fn=fn)
        if missed or spurious:
            mistakes.append({"text": text, "missed": missed, "spurious": spurious})
        negative_cases += not labels
        false_positive_cases += not labels and bool(predicted)
    by_kind = {kind: _rates(c) for kind, c in counts.items()}
    overall = _rates(sum(counts.values(), Counter()))
    return {**overall, "by_kind": by_kind, "mistakes": mistakes,
            "false_positive_cases": false_positive_cases, "negative_cases": negative_cases}


def _unmatched(pairs: list, others: list) -> list:
    """The ``(kind, value)`` pairs of ``pairs`` left over after matching each one in ``others`` once."""
    left = Counter((k, _normal(v)) for k, v in others)
    out = []
    for kind, value in pairs:
        if left[(kind, _normal(value))] > 0:
            left[(kind, _normal(value))] -= 1
        else:
            out.append((kind, value))
    return out


def _rates(c: Counter) -> dict:
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    return {"precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"), "tp": tp, "fp": fp, "fn": fn}


# ----------------------------------------------------------------------------
# The generated test set
# ----------------------------------------------------------------------------
#: User names of diverse origins, none of them a TinyWorld character.
FIRST_NAMES = ["Ada", "Aisha", "Mateo", "Priya", "Kwame", "Sofia", "Hiroshi", "Chen", "Fatima", "Lars",
               "Ingrid", "Diego", "Amara", "Tariq", "Mei", "Oluwaseun", "Santiago", "Anika", "Bjorn",
               "Chloe", "Dmitri", "Esther", "Farah", "Gabriel", "Haruto", "Imani", "Jonas", "Keiko",
               "Lucia", "Malik", "Nadia", "Oren", "Parisa", "Rafael", "Siobhan", "Tomasz", "Valentina",
               "Wei", "Ximena", "Yasmin", "Zainab", "José", "Anne-Marie", "Søren"]
SURNAMES = ["Park", "Okafor", "García", "Nguyen", "Kowalski", "O'Brien", "Müller", "Tanaka", "Haddad",
            "Johansson", "Rossi", "Singh", "Mensah", "Ivanova", "Dubois", "Kim", "Fernández", "Schmidt",
            "Adeyemi", "Lindqvist", "Moreau", "Chatterjee", "Novak", "Abebe", "MacLeod", "Al-Masri",
            "Da Silva", "Papadopoulos", "Yilmaz", "Kaur"]
TINYWORLD_NAMES = SHE_NAMES + HE_NAMES + UNKNOWN_NAMES
DOMAINS = ["example.com", "mail.co.uk", "uni.edu", "post.de", "inbox.org", "company.io", "web.fr",
           "students.example.ac.uk"]


def _digits(rng: random.Random, n: int, first: str = "0123456789") -> str:
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name.replace("ø", "o")).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z]", "", plain)


def _user(rng: random.Random) -> tuple[str, str, str]:
    """``(first, last, full)``: a random user's name."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    return first, last, f"{first} {last}"


def _email(rng: random.Random, turn: int) -> str:
    first, last, _ = _user(rng)
    first, last, domain = _ascii(first).lower(), _ascii(last).lower(), rng.choice(DOMAINS)
    forms = [f"{first}.{last}@{domain}", f"{first}_{last}+{rng.choice(['news', 'shop', 'x1'])}@{domain}",
             f"{first}{last}@{domain}".upper(), f"{first}{_digits(rng, rng.randint(2, 4))}@{domain}",
             f"{first[0]}.{last}-{rng.randint(1, 9)}@{domain}", f"{first.capitalize()}.{last.capitalize()}@{domain}"]
    return forms[turn % len(forms)]


def _nanp(rng):
    return _digits(rng, 3, "23456789"), _digits(rng, 3), _digits(rng, 4)


#: Phone formats: name -> function of an rng giving the number as typed.
PHONE_FORMATS = {
    "nanp_dash": lambda r: "{}-{}-{}".format(*_nanp(r)),
    "nanp_paren": lambda r: "({}) {}-{}".format(*_nanp(r)),
    "nanp_dot": lambda r: "{}.{}.{}".format(*_nanp(r)),
    "nanp_space": lambda r: "{} {} {}".format(*_nanp(r)),
    "nanp_plus1": lambda r: r.choice(["+1 {} {} {}", "+1-{}-{}-{}", "+1 ({}) {}-{}", "1-{}-{}-{}"])
    .format(*_nanp(r)),
    "nanp_bare": lambda r: "".join(_nanp(r)),
    "uk_intl": lambda r: r.choice([f"+44 20 {_digits(r, 4)} {_digits(r, 4)}",
                                   f"+44 7{_digits(r, 3)} {_digits(r, 6)}",
                                   f"+44 (0)20 {_digits(r, 4)} {_digits(r, 4)}"]),
    "uk_00": lambda r: f"0044 20 {_digits(r, 4)} {_digits(r, 4)}",
    "uk_national": lambda r: r.choice([f"07{_digits(r, 3)} {_digits(r, 6)}",
                                       f"020 {_digits(r, 4)} {_digits(r, 4)}"]),
    "de_intl": lambda r: r.choice([f"+49 30 {_digits(r, 7)}", f"+49 151 {_digits(r, 8)}",
                                   f"0049 89 {_digits(r, 7)}"]),
    "fr_intl": lambda r: "+33 " + _digits(r, 1, "123456789") + "".join(f" {_digits(r, 2)}" for _ in range(4)),
    "fr_national": lambda r: r.choice([" ", "."]).join(["0" + _digits(r, 1, "123456789")]
                                                      + [_digits(r, 2) for _ in range(4)]),
    "e164": lambda r: r.choice(["+447" + _digits(r, 9), "+4915" + _digits(r, 9), "+336" + _digits(r, 8),
                                "+1" + "".join(_nanp(r))]),
    "other_intl": lambda r: r.choice([f"+61 2 {_digits(r, 4)} {_digits(r, 4)}",
                                      f"+81 3-{_digits(r, 4)}-{_digits(r, 4)}",
                                      f"+91 {_digits(r, 5, '6789')} {_digits(r, 5)}"]),
}
PHONE_TEMPLATES = ["Call me on {p}.", "My number is {p}", "You can reach me at {p} after 5:30 pm.",
                   "Text {p} if order #48213 is late.", "My cell: {p}", "{p} is my mobile, call anytime!",
                   "Please ring {p} (evenings) about the 2026-12-04 booking.", "Phone {p}, thanks",
                   "tel:{p}", "Numbers: {p} (home) and {p} (work)."]
EMAIL_TEMPLATES = ["My email is {e}.", "Contact me at {e}, thanks!", "Send the file to <{e}> please.",
                   "{e} is the best address.", "Email: {e}", "(you can also write to {e})"]
#: Self-introductions: (template, how many times the first name appears again after {n}).
INTRO_TEMPLATES = {
    "my_name_is": "Hi, my name is {n} and I need help with my order.",
    "my_names": "My name's {n}.",
    "im": "I'm {n}, nice to meet you.",
    "im_curly": "I’m {n} from Leeds and I use v3.2 of the app.",
    "i_am": "I am {n}. Can you help me with v2.13.0?",
    "call_me": "Please call me {n}.",
    "this_is": "Hello, this is {n} speaking.",
    "here": "{n} here, quick question about billing.",
    "hey_here": "Hey! {n} here.",
    "again": "My name is {n}, but friends call me {first}.",
    "repeat": "I'm {n}. Please write {first} on the cup.",
    "title": "My name is {title} {last}.",
}
KNOWN_TEMPLATES = ["Please update the delivery address for {full}.", "Thanks, {first}", "{first}'s refund: any news?",
                   "Is the booking under {full} confirmed?", "Tell me a story about {character}."]


def _phone_case(rng, turn):
    fmt = list(PHONE_FORMATS)[turn % len(PHONE_FORMATS)]
    template = rng.choice(PHONE_TEMPLATES)
    phones = [PHONE_FORMATS[fmt](rng) for _ in range(template.count("{p}"))]
    text = template.replace("{p}", "{}").format(*phones)
    return Case(text, tuple(("phone", p) for p in phones), f"phone:{fmt}")


def _email_case(rng, turn):
    email = _email(rng, turn)
    return Case(rng.choice(EMAIL_TEMPLATES).format(e=email), (("email", email),), "email")


def _intro_case(rng, turn):
    phrasing = list(INTRO_TEMPLATES)[turn % len(INTRO_TEMPLATES)]
    first, last, full = _user(rng)
    name = rng.choice([first, full])
    title = rng.choice(["Dr.", "Dr", "Mrs", "Mr.", "Ms"])
    text = INTRO_TEMPLATES[phrasing].format(n=name, first=first, last=last, title=title)
    pii = [("name", last)] if phrasing == "title" else [("name", name)]
    pii += [("name", first)] * (phrasing in ("again", "repeat"))
    return Case(text, tuple(pii), f"name:{phrasing}")


def _known_case(rng, turn):
    first, _, full = _user(rng)
    template = KNOWN_TEMPLATES[turn % len(KNOWN_TEMPLATES)]
    text = template.format(full=full, first=first, character=rng.choice(TINYWORLD_NAMES))
    pii = tuple(("name", v) for v, key in [(full, "{full}"), (first, "{first}")] if key in template)
    return Case(text, pii, "known_name", (full, first))


def _mixed_case(rng, turn):
    first, _, full = _user(rng)
    name = rng.choice([first, full])
    email, phone = _email(rng, turn), PHONE_FORMATS[rng.choice(list(PHONE_FORMATS))](rng)
    text = f"Hi, I'm {name}. Reach me at {email} or {phone} before 17:30 on 04/12/2026."
    return Case(text, (("name", name), ("email", email), ("phone", phone)), "mixed")


#: Look-alikes that are not personal data: family -> function of an rng giving the text.
NEGATIVES = {
    "version": lambda r: r.choice([f"I upgraded to v{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)}.",
                                   f"Python 3.{r.randint(8, 13)}.{r.randint(0, 12)} is installed.",
                                   f"Please install version {r.randint(1, 9)}.{r.randint(0, 9)}."
                                   f"{r.randint(0, 9)}.{r.randint(0, 99)}.",
                                   f"Windows build 10.0.{_digits(r, 5, '12')}.{_digits(r, 4)} crashes."]),
    "date": lambda r: r.choice([f"Is 2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} a holiday?",
                                f"Between {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/2026 and "
                                f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/2027.",
                                f"Due {r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(1990, 2030)}",
                                f"Born Dec {r.randint(1, 28)}, {r.randint(1950, 2020)}.",
                                f"Logged at 2026-12-{r.randint(10, 28)} 17:49:00 and 2026{r.randint(10, 12)}04."]),
    "time": lambda r: r.choice([f"Meet at {r.randint(0, 23):02d}:{r.randint(0, 59):02d}.",
                                f"The bus leaves at {r.randint(1, 12)}:{r.randint(0, 59):02d} pm.",
                                f"Alarm set for {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00 and 09:15."]),
    "price": lambda r: r.choice([f"It costs ${r.randint(1, 99)}.{r.randint(0, 99):02d}.",
                                 f"The laptop is €{r.randint(1, 9)},{r.randint(100, 999)}.00 now.",
                                 f"They raised {r.randint(1, 9)},{r.randint(100, 999)},{r.randint(100, 999)}.",
                                 f"Rent went from £1,250 to £1,{r.randint(300, 999)} a month."]),
    "id": lambda r: r.choice([f"Where is order #{_digits(r, r.randint(6, 10), '123456789')}?",
                              f"My ID {_digits(r, 4)}-{_digits(r, 4)} is not accepted.",
                              f"See ticket ABC-{_digits(r, 5)}.",
                              f"ISBN 978-{r.randint(0, 9)}-{_digits(r, 2)}-{_digits(r, 6)}-{r.randint(0, 9)}",
                              f"The book 978-{r.randint(0, 9)}-{_digits(r, 2)}-{_digits(r, 6)}-{r.randint(0, 9)}"
                              " is great.",
                              f"Order number: {_digits(r, 10, '23456789')} never arrived.",
                              f"Tracking 1Z{_digits(r, 3)}AA{_digits(r, 10)} please.",
                              f"Invoice INV-2026-{_digits(r, 6)} is unpaid."]),
    "arithmetic": lambda r: r.choice([f"What is {r.randint(1, 99)} + {r.randint(1, 99)}?",
                                      f"{r.randint(1, 12)} * {r.randint(1, 12)} = {r.randint(1, 144)}",
                                      f"Compute {r.randint(100, 999)} - {r.randint(10, 99)} + {r.randint(1, 9)}.",
                                      f"What is {_digits(r, 6, '123456789')} * {r.randint(100, 999)}?",
                                      f"Is {r.randint(1000, 9999)} + {r.randint(1000, 9999)} more than 12000?"]),
    "number": lambda r: r.choice([f"In {r.randint(1900, 2030)} about {r.randint(1, 99)}% of "
                                  f"{r.randint(100, 999)} people voted.",
                                  "My scores were " + " ".join(str(r.randint(10, 20)) for _ in range(5)) + ".",
                                  "Dice: " + " ".join(str(r.randint(1, 6)) for _ in range(9)),
                                  f"Room {r.randint(100, 999)}, floor {r.randint(1, 9)}, seat {r.randint(1, 40)}.",
                                  f"The answer is {r.randint(0, 9999)}."]),
    "ip": lambda r: r.choice([f"Server 192.168.{r.randint(0, 255)}.{r.randint(0, 255)} is down.",
                              f"Ping 10.0.{r.randint(0, 255)}.{r.randint(0, 255)} please."]),
    "story": lambda r: r.choice([f"{r.choice(TINYWORLD_NAMES)} lives in Oakton.",
                                 f"Tell me a story about {r.choice(TINYWORLD_NAMES)}.",
                                 f"What is {r.choice(TINYWORLD_NAMES)}'s pet?",
                                 f"{r.choice(SHE_NAMES)} and {r.choice(HE_NAMES)} went to the park.",
                                 f"My cat's name is {r.choice(TINYWORLD_NAMES)}.",
                                 f"Her name is {r.choice(SHE_NAMES)}.",
                                 f"I'm {r.choice(TINYWORLD_NAMES)}'s biggest fan."]),
    "not_intro": lambda r: r.choice(["I'm happy to help.", "I am sure it works.", "I'm a teacher.",
                                     "Call me later, please.", "I'm Sorry, I forgot.", "I'm not sure.",
                                     "I am Ready when you are.", "I'm from Canada.", "Call me Tomorrow.",
                                     "I'm Canadian.", "Honestly I'm Fine.", "This is a test.",
                                     "I am going to the library.", "Just call me when you are Done."]),
}
#: How many cases of each family one round of the generator makes.
POSITIVE_WEIGHTS = {"phone": 5, "email": 2, "name": 4, "known_name": 1, "mixed": 1}
POSITIVE_BUILDERS = {"phone": _phone_case, "email": _email_case, "name": _intro_case,
                     "known_name": _known_case, "mixed": _mixed_case}


def pii_test_cases(seed: int = 0, n: int = 200) -> list[Case]:
    """``n`` labelled cases, over half with personal data, every family and format present.

    Families take turns (so each phone format, intro phrasing and look-alike family
    appears for n >= 200); contents come from ``random.Random(seed)``. A third of the
    cases with personal data also carry a look-alike sentence (a date, a version...)
    that must stay. The list is shuffled.
    """
    rng = random.Random(seed)
    schedule = [f for f, w in POSITIVE_WEIGHTS.items() for _ in range(w)] + list(NEGATIVES)
    turns, cases = Counter(), []
    for i in range(n):
        family = schedule[i % len(schedule)]
        turn = turns[family]
        turns[family] += 1
        if family in POSITIVE_BUILDERS:
            cases.append(_with_look_alike(rng, POSITIVE_BUILDERS[family](rng, turn)))
        else:
            cases.append(Case(NEGATIVES[family](rng), (), f"neg_{family}"))
    rng.shuffle(cases)
    return cases


def _with_look_alike(rng: random.Random, case: Case) -> Case:
    if rng.random() >= 1 / 3:
        return case
    family = rng.choice(list(NEGATIVES))
    return case._replace(text=f"{case.text} {NEGATIVES[family](rng)}", family=f"{case.family}+neg_{family}")
