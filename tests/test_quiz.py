"""Notebook 00's quiz: neutral options, an explanation for each, sources and honest notebook pointers."""
import json
import re

import pytest

from utils.checks import CheckError
from utils.paths import NOTEBOOK_DIR
from utils.quiz import AS_OF, HELP_DATA, PLANNED, QUIZ, check_answer, explain, notebook_label, sources

#: What a label must not start with: a verdict followed by its reason gives the answer away.
VERDICT = re.compile(r"^\s*(true|false|right|wrong|correct|incorrect|yes|no|myth|fact|not quite)\b\s*[:,;.\-(]",
                     re.IGNORECASE)


def all_text(question):
    yield question.claim
    for option in question.options:
        yield option.text
        yield option.why
    for experiment in question.tests:
        yield experiment.what
    for source in question.sources:
        yield from (source.title, source.by, source.date)


def test_every_question_has_one_right_answer_and_every_option_an_explanation():
    for q in QUIZ:
        assert sum(o.correct for o in q.options) == 1, q.claim
        assert len({o.text for o in q.options}) == len(q.options), q.claim
        for o in q.options:
            assert len(o.why) > 40, (q.claim, o.text)
            assert not o.why.lower().startswith(("right", "not quite", "wrong")), "explain() adds the verdict"


def test_options_are_neutral_claims_that_do_not_give_the_answer_away():
    for q in QUIZ:
        for o in q.options:
            assert not VERDICT.match(o.text), f"the label {o.text!r} carries its verdict"
            assert o.text in ("True", "False") or len(o.text) <= 60, f"a long label explains itself: {o.text!r}"
            assert o.why not in o.text


def test_the_right_answer_is_not_always_the_same_label():
    right = [next(o.text for o in q.options if o.correct) for q in QUIZ]
    assert 2 <= right.count("True") <= len(QUIZ) - 2, right


def test_no_markdown_in_any_text_the_widgets_show():
    for q in QUIZ:
        for text in all_text(q):
            assert not re.search(r"[*`_]|\[.*\]\(", text), f"markdown does not render in ipywidgets: {text!r}"
            assert "((" not in text and "))" not in text, f"doubled brackets: {text!r}"


def test_every_claim_has_a_dated_source_with_a_link():
    for q in QUIZ:
        assert q.sources, q.claim
        for s in q.sources:
            assert s.title and s.by and s.url.startswith("https://")
            assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?|read (late|early|mid-)? ?\d{4}(-\d{2}(-\d{2})?)?",
                                s.date), s.date


def test_as_of_names_what_was_read_and_when():
    assert HELP_DATA.title in AS_OF and "help centre" in AS_OF
    assert re.search(r"\bread (late |early |mid-)?20\d\d", AS_OF), AS_OF
    assert "(" not in AS_OF, "AS_OF is put inside brackets by its users"


def test_every_policy_claim_cites_the_help_centre():
    for q in QUIZ:
        text = " ".join(all_text(q))
        if re.search(r"opt|API|Improve the model", text):
            assert any(s.by.startswith("OpenAI") for s in q.sources), q.claim


def test_every_referenced_notebook_exists_or_is_marked_planned():
    shipped = {p.name[:2] for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")}
    assert not shipped & set(PLANNED), "a planned notebook now ships: remove it from quiz.PLANNED"
    for q in QUIZ:
        for experiment in q.tests:
            assert experiment.notebook in shipped | set(PLANNED), experiment
            label = notebook_label(experiment.notebook)
            assert label == (f"notebook {experiment.notebook}" if experiment.notebook in shipped
                             else f"planned: notebook {experiment.notebook}")
            described = experiment.describe()
            assert ("Planned: notebook" in described) == (experiment.notebook not in shipped), described
    with pytest.raises(ValueError, match="neither in .* nor planned"):
        notebook_label("42")


def test_notebook_00_lists_every_source_and_counts_from_the_quiz():
    cells = json.loads((NOTEBOOK_DIR / "00_start_here.ipynb").read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for s in sources():
        assert s.url in markdown and s.title in markdown, f"notebook 00's Sources cell misses {s.title!r}"
    assert "len(QUIZ)" in code
    assert not re.search(r"\b(six|seven|eight) (popular )?claims\b", markdown), "print the count, don't type it"
    assert "CURRICULUM.md" not in markdown and "FACTS.md" not in markdown, "the repo does not ship them"


def test_check_answer_explains_and_names_the_tests_and_sources(capsys):
    assert check_answer(1, "b") is True
    out = capsys.readouterr().out
    assert out.startswith("Right.") and "notebook 05" in out and "Source:" in out
    assert check_answer(1, " A ") is False  # case and spaces do not matter
    assert capsys.readouterr().out.startswith("Not quite.")
    assert check_answer(4, "a") is False
    assert "Tested in notebook 09" in capsys.readouterr().out


def test_check_answer_without_a_choice_prints_the_question(capsys):
    assert check_answer(1, None) is None
    out = capsys.readouterr().out
    assert QUIZ[0].claim in out and "a) True" in out and "'a', 'b', 'c'" in out


@pytest.mark.parametrize("number, choice, message", [
    (1, "z", r"question 1: answer with one of a, b, c .*not 'z'"),
    (4, "c", r"question 4: answer with one of a, b \(.*not 'c'"),
    (1, 2, "answer with one of a, b, c .*not 2"),
    (1, "", "answer with one of"),
    (1, ["a"], "answer with one of"),
    (0, "a", "there are questions 1 to 7"),
    (len(QUIZ) + 1, "a", f"there are questions 1 to {len(QUIZ)}"),
    ("1", "a", "as an int, not '1'"),
    (True, "a", "as an int, not True"),
    (None, "a", "as an int, not None"),
])
def test_bad_inputs_say_what_to_do(number, choice, message):
    with pytest.raises(CheckError, match=message):
        check_answer(number, choice)


def test_explanations_are_plain_text_lines():
    for q in QUIZ:
        for o in q.options:
            lines = explain(q, o).split("\n")
            assert lines[0].startswith("Right." if o.correct else "Not quite.")
            assert sum(line.startswith("Source:") for line in lines) == len(q.sources)


def test_widgets_hide_the_explanation_until_a_pick(monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython.display

    from utils import quiz
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))
    quiz.show_quiz()
    assert len(shown) == len(QUIZ)
    for box, q in zip(shown, QUIZ):
        title, buttons, feedback = box.children
        assert list(buttons.options) == [o.text for o in q.options] and buttons.value is None
        assert feedback.value == ""  # nothing given away before the click
        buttons.value = q.options[-1].text
        assert feedback.value.startswith("Right." if q.options[-1].correct else "Not quite.")
        assert "&lt;" not in title.value or "<" in q.claim
