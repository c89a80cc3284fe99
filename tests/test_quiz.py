"""Notebook 00's quiz: every option explains itself and names the notebook that tests it."""
import pytest

from utils.quiz import QUIZ, check_answer


def test_every_question_has_one_right_answer_and_every_option_an_explanation():
    for q in QUIZ:
        assert sum(o.correct for o in q.options) == 1, q.claim
        for o in q.options:
            assert len(o.why) > 30 and o.notebook.isdigit()


def test_check_answer_explains_and_rejects_bad_input(capsys):
    assert check_answer(1, "b") is True
    assert "notebook 05" in capsys.readouterr().out
    assert check_answer(1, None) is None
    with pytest.raises(ValueError, match="one of a, b"):
        check_answer(1, "z")
