"""utils.checks: learner self-checks say what was expected and what came."""
import pytest
import torch

from utils.checks import CheckError, check_shape, compare


def test_check_shape_accepts_matching_and_wildcards():
    check_shape(torch.zeros(2, 3), (2, None))


def test_check_shape_says_what_was_expected():
    with pytest.raises(CheckError, match=r"shape \(3, 2\), expected \(2, 3\)"):
        check_shape(torch.zeros(3, 2), (2, 3))
    with pytest.raises(CheckError, match="should be a torch.Tensor"):
        check_shape([[1, 2]], (1, 2))


def test_compare_reports_exact_close_and_where_it_differs():
    assert compare("x", torch.ones(3), torch.ones(3)) == "exact"
    assert compare("x", torch.ones(3) + 1e-7, torch.ones(3)) == "close"
    with pytest.raises(CheckError, match=r"index \(1,\)"):
        compare("x", torch.tensor([1.0, 5.0]), torch.tensor([1.0, 2.0]))
    with pytest.raises(CheckError, match="shape"):
        compare("x", torch.ones(2), torch.ones(3))


def test_check_error_hides_the_traceback_in_jupyter():
    lines = CheckError("nope")._render_traceback_()
    assert len(lines) == 1 and "nope" in lines[0]


def test_compare_explains_answers_that_are_not_numbers():
    with pytest.raises(CheckError, match="expected numbers or a tensor, got str"):
        compare("x", "abc", torch.ones(1))


def test_exercise_not_answered_right_and_wrong(capsys):
    from utils.checks import TODO, check_exercise

    def is_six(x):
        assert x == 6, f"expected 6, got {x}"

    assert check_exercise("1.1", TODO, is_six) is None
    assert "not answered yet" in capsys.readouterr().out
    assert check_exercise("1.1", 6, is_six) is True
    with pytest.raises(CheckError, match="exercise 1.1: expected 6, got 5"):
        check_exercise("1.1", 5, is_six)
    with pytest.raises(CheckError, match="your answer raised TypeError"):
        check_exercise("1.2", "six", lambda x: x + 1)
    with pytest.raises(CheckError, match="answer has shape"):
        check_exercise("1.3", torch.ones(2), lambda x: compare("x", x, torch.ones(3)))


def test_require_names_the_missing_cell():
    from utils.checks import require
    require({"history": 1}, "history", made_by="the training cell")
    with pytest.raises(CheckError, match="needs `history`, made by the training cell of section 3"):
        require({}, "history", made_by="the training cell of section 3")
