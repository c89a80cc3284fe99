"""The scrubber removes what users typed about themselves and leaves look-alikes alone."""
import math

import pytest

from utils.privacy import (
    FIRST_NAMES,
    INTRO_TEMPLATES,
    KINDS,
    NEGATIVES,
    PHONE_FORMATS,
    SURNAMES,
    Case,
    Span,
    evaluate_scrubber,
    find_pii,
    find_pii_weak,
    pii_test_cases,
    scrub,
)
from utils.world import HE_NAMES, SHE_NAMES, UNKNOWN_NAMES

PHONES = ["555-123-4567", "(555) 123-4567", "555.123.4567", "555 123 4567", "+1 555 123 4567",
          "+1-555-123-4567", "+1 (555) 123-4567", "1-800-555-0199", "+44 20 7946 0958",
          "+44 (0)20 7946 0958", "+49 30 1234567", "0049 89 1234567", "0044 20 7946 0958", "07700 900123",
          "020 7946 0958", "+33 1 23 45 67 89", "01 23 45 67 89", "01.23.45.67.89", "5551234567",
          "15551234567", "07700900123", "+447700900123", "+61 2 9876 5432", "+81 3-1234-5678",
          "+91 98765 43210"]
EMAILS = ["ada.park@example.com", "a_b+tag@mail.co.uk", "UPPER@X.ORG", "x1@sub.uni.edu",
          "j.nguyen-2@company.io", "5551234567@txt.example.net"]
INTRODUCTIONS = [
    ("my name is Ada", ["Ada"]),
    ("My name's Ada Park.", ["Ada Park"]),
    ("I'm Ada, hi!", ["Ada"]),
    ("I’m Ada from Leeds", ["Ada"]),
    ("I am Ada Park and I need help", ["Ada Park"]),
    ("Please call me Ada.", ["Ada"]),
    ("Hello, this is Ada speaking.", ["Ada"]),
    ("Ada here, quick question.", ["Ada"]),
    ("Hey! Ada Park here.", ["Ada Park"]),
    ("I'm José García.", ["José García"]),
    ("I'm Anne-Marie O'Brien.", ["Anne-Marie O'Brien"]),
    ("My name is Dr. Okafor.", ["Okafor"]),
    ("Hi I'm Ada I need help", ["Ada"]),
    ("I'm Ada. Please write Ada on the cup.", ["Ada", "Ada"]),
    ("My name is Ada Park, but friends call me Ada.", ["Ada Park", "Ada"]),
]
LOOK_ALIKES = [
    "I upgraded to v2.13.0.", "Python 3.11.4 is installed.", "Install version 1.2.3.4.",
    "Windows build 10.0.19045.2965 crashes.", "Is 2026-12-04 a holiday?", "Between 04/12/2026 and 18/12/2026.",
    "Due 12.04.2026", "Born Dec 4, 2026.", "Logged at 2026-12-04 17:49:00.", "2026-12-04T17:49:00Z",
    "Meet at 17:49.", "The bus leaves at 5:30 pm.", "Alarm at 17:49:00.", "It costs $12.50.",
    "Now €1,299.00.", "They raised 1,000,000.", "Where is order #123456?", "Where is order #5551234567?",
    "My ID 4821-7733 fails.", "See ticket ABC-12345.", "ISBN 978-3-16-148410-0", "The book 978-3-16-148410-0",
    "Order number: 5551234567 never came.", "Invoice INV-2026-004512.", "Tracking 1Z999AA10123456784.",
    "What is 12 + 7?", "3 * 4 = 12", "What is 123456 * 789?", "In 1999 about 45% of 300 people voted.",
    "My scores were 12 15 18 20 22.", "Dice: 1 2 3 4 5 6 1 2 3", "Room 101, floor 3.", "The answer is 42.",
    "Server 192.168.100.200 is down.", "Unix time 1733318940.", "Card 4111 1111 1111 1111.",
    "Mia lives in Oakton.", "Tell me a story about Leo.", "What is Nora's pet?", "My cat's name is Max.",
    "Her name is Mia.", "I'm Mia's biggest fan.", "I'm happy", "I am sure", "I'm a teacher", "call me later",
    "I'm Fine", "I'm Sorry, I forgot.", "Call me Tomorrow.", "I'm Canadian.", "It is 555-1234.",
]


def found(text, known_names=(), find=find_pii):
    return [(s.kind, s.text_in(text)) for s in find(text, known_names)]


@pytest.mark.parametrize("phone", PHONES)
def test_each_phone_format_is_found_with_its_exact_span(phone):
    for text in [f"Call me on {phone} today.", f"{phone}", f"My number: {phone}.", f"tel:{phone}, thanks"]:
        assert found(text) == [("phone", phone)], text


@pytest.mark.parametrize("email", EMAILS)
def test_each_email_is_found_with_its_exact_span(email):
    for text in [f"Write to {email}.", f"<{email}>", f"{email} is mine"]:
        assert found(text) == [("email", email)], text


@pytest.mark.parametrize("text,names", INTRODUCTIONS)
def test_a_name_a_user_gives_for_themselves_is_found(text, names):
    assert found(text) == [("name", n) for n in names]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_left_alone(text):
    assert found(text) == []


def test_a_phone_next_to_other_numbers_is_cut_out_exactly():
    assert found("Call 555-123-4567 2 times") == [("phone", "555-123-4567")]
    assert found("In 2024 555-123-4567 called") == [("phone", "555-123-4567")]
    assert found("(call 555-123-4567)") == [("phone", "555-123-4567")]
    assert found("+1 (555) 123-4567 ext. 89") == [("phone", "+1 (555) 123-4567")]


def test_known_names_are_found_as_whole_words_only():
    known = ("Ada Park", "Ada")
    assert found("Thanks, Ada Park. Ada's refund?", known) == [("name", "Ada Park"), ("name", "Ada")]
    assert found("Adam and Adalyn met Lady Ada", known) == [("name", "Ada")]
    assert found("She said 'Ada'.", known) == [("name", "Ada")]
    assert found("Anne-Marie met Marie.", ("Marie",)) == [("name", "Marie")]
    assert found("Thanks, Ada Park.") == []


def test_overlaps_keep_the_email_and_spans_come_sorted():
    text = "Ada.Park@example.com, I'm Ada, 555-123-4567"
    spans = find_pii(text, ("Ada", "Park"))
    assert [(s.kind, s.text_in(text)) for s in spans] == [("email", "Ada.Park@example.com"), ("name", "Ada"),
                                                          ("phone", "555-123-4567")]
    for case in pii_test_cases(seed=0, n=200):
        spans = find_pii(case.text, case.known_names)
        assert spans == sorted(spans)
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:])), case.text


def test_scrub_replaces_each_span_with_its_placeholder():
    text = "Hi, I'm Ada Park. Mail ada@example.com or call +44 20 7946 0958 before 17:30 on 2026-12-04."
    assert scrub(text) == "Hi, I'm [NAME]. Mail [EMAIL] or call [PHONE] before 17:30 on 2026-12-04."
    assert scrub("Thanks, Ada", known_names=("Ada",)) == "Thanks, [NAME]"
    assert scrub("Call (555) 123-4567", find=find_pii_weak) == "Call (555) 123-4567"
    assert scrub("Mia lives in Oakton.") == "Mia lives in Oakton."


def test_the_generator_is_deterministic_and_sized():
    assert pii_test_cases(seed=3, n=150) == pii_test_cases(seed=3, n=150)
    assert pii_test_cases(seed=3, n=150) != pii_test_cases(seed=4, n=150)
    assert len(pii_test_cases(seed=0, n=200)) == 200 and len(pii_test_cases(seed=1, n=123)) == 123


def test_the_generator_mixes_every_kind_format_and_look_alike_family():
    cases = pii_test_cases(seed=0, n=200)
    families = {c.family.split("+")[0] for c in cases}
    assert {f"phone:{f}" for f in PHONE_FORMATS} <= families
    assert {f"name:{p}" for p in INTRO_TEMPLATES} <= families
    assert {f"neg_{f}" for f in NEGATIVES} | {"email", "known_name", "mixed"} <= families
    assert {kind for c in cases for kind, _ in c.pii} == set(KINDS)
    negatives = sum(not c.pii for c in cases)
    assert 0.3 * len(cases) < negatives < 0.6 * len(cases)
    with_look_alike = sum("+neg_" in c.family for c in cases if c.pii)
    assert 0.2 * (len(cases) - negatives) < with_look_alike < 0.5 * (len(cases) - negatives)


def test_every_label_is_written_in_its_case():
    for case in pii_test_cases(seed=1, n=400):
        for kind, value in case.pii:
            assert kind in KINDS
            assert case.text.count(value) >= sum(v == value for _, v in case.pii), case


def test_user_names_are_not_tinyworld_characters():
    tinyworld = set(SHE_NAMES) | set(HE_NAMES) | set(UNKNOWN_NAMES)
    assert not tinyworld & (set(FIRST_NAMES) | set(SURNAMES))
    assert len(FIRST_NAMES) >= 40 and len(SURNAMES) >= 30


def fixed_finder(answers):
    """A fake scrubber that marks the given substrings, to test the metric itself."""
    def find(text, known_names=()):
        spans = []
        for kind, value in answers.get(text, []):
            start = text.index(value)
            spans.append(Span(start, start + len(value), kind))
        return sorted(spans)
    return find


def test_evaluate_scrubber_counts_value_level_hits_misses_and_false_alarms():
    cases = [
        ("Call 555-123-4567 or 555-987-6543.", [("phone", "555-123-4567"), ("phone", "555-987-6543")]),
        ("I'm Ada, ada@x.com", [("name", "Ada"), ("email", "ada@x.com")]),
        ("Version 3.11.4", []),
        ("Mia lives in Oakton.", []),
        Case("Thanks, Ada", (("name", "Ada"),), "known_name", ("Ada",)),
    ]
    find = fixed_finder({
        cases[0][0]: [("phone", "555-123-4567 ")],          # trailing space: still a hit
        cases[1][0]: [("name", "Ada"), ("phone", "ada@x.com")],  # right text, wrong kind
        cases[2][0]: [("phone", "3.11.4")],                   # a false alarm
        "Thanks, Ada": [("name", "Ada")],
    })
    result = evaluate_scrubber(find, cases)
    phone, name, email = (result["by_kind"][k] for k in ("phone", "name", "email"))
    assert (phone["tp"], phone["fp"], phone["fn"]) == (1, 2, 1)
    assert (name["tp"], name["fp"], name["fn"]) == (2, 0, 0)
    assert (email["tp"], email["fp"], email["fn"]) == (0, 0, 1)
    assert phone["precision"] == pytest.approx(1 / 3) and phone["recall"] == pytest.approx(1 / 2)
    assert email["recall"] == 0 and math.isnan(email["precision"])
    assert (result["tp"], result["fp"], result["fn"]) == (3, 2, 2)
    assert result["precision"] == pytest.approx(3 / 5) and result["recall"] == pytest.approx(3 / 5)
    assert (result["false_positive_cases"], result["negative_cases"]) == (1, 2)
    assert [m["text"] for m in result["mistakes"]] == [c[0] for c in cases[:3]]
    assert result["mistakes"][1] == {"text": cases[1][0], "missed": [("email", "ada@x.com")],
                                     "spurious": [("phone", "ada@x.com")]}


def test_a_repeated_value_must_be_found_each_time():
    cases = [("Ada, Ada", [("name", "Ada"), ("name", "Ada")])]
    once = evaluate_scrubber(fixed_finder({"Ada, Ada": [("name", "Ada")]}), cases)
    assert (once["tp"], once["fn"]) == (1, 1)
    assert evaluate_scrubber(find_pii, [Case("Ada, Ada", cases[0][1], "", ("Ada",))])["recall"] == 1


@pytest.mark.parametrize("seed,n", [(0, 200), (1, 400)])
def test_the_scrubber_is_precise_and_complete_on_the_generated_set(seed, n):
    result = evaluate_scrubber(find_pii, pii_test_cases(seed=seed, n=n))
    for kind in KINDS:
        rates = result["by_kind"][kind]
        assert rates["precision"] >= 0.97 and rates["recall"] >= 0.97, (kind, rates, result["mistakes"][:5])
    assert result["false_positive_cases"] <= 0.02 * result["negative_cases"]


def test_the_weak_scrubber_misses_most_phones_and_every_name():
    cases = pii_test_cases(seed=1, n=400)
    weak, real = evaluate_scrubber(find_pii_weak, cases), evaluate_scrubber(find_pii, cases)
    assert weak["by_kind"]["email"]["recall"] >= 0.97  # the control is weak, not broken
    assert weak["by_kind"]["phone"]["recall"] <= 0.3
    assert real["by_kind"]["phone"]["recall"] - weak["by_kind"]["phone"]["recall"] >= 0.5
    assert weak["by_kind"]["name"]["recall"] == 0 and weak["recall"] < real["recall"] - 0.5
