"""Self-checks for learners' exercise answers, with friendly messages.

After d2l's ``check_shape`` and Karpathy's ``cmp``: say what was expected, what
came, and a hint -- never a raw traceback from inside torch.
"""
from __future__ import annotations

import torch


class CheckError(AssertionError):
    """A learner's answer is not right yet; the message says why and what to try.

    Raised (instead of a deep torch traceback) and shown without a stack by
    Jupyter because the traceback is hidden for this class.
    """

    def _render_traceback_(self):  # IPython shows only this, not 40 frames
        return [f"\x1b[31mCheck failed:\x1b[0m {self}"]


def check_shape(t, shape, name: str = "tensor") -> None:
    """Check that ``t`` has ``shape`` (use ``None`` for 'any size' in a dimension).

    >>> check_shape(torch.zeros(2, 3), (2, None))
    """
    if not isinstance(t, torch.Tensor):
        raise CheckError(f"{name} should be a torch.Tensor of shape {tuple(shape)}, "
                         f"but it is a {type(t).__name__}. Hint: torch.tensor(...) converts lists.")
    got = tuple(t.shape)
    want = tuple(shape)
    same = len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))
    if not same:
        pretty = tuple("any" if w is None else w for w in want)
        hint = ("check which dimension you summed or indexed over"
                if len(got) != len(want) else "check the order of the dimensions (transpose?)")
        raise CheckError(f"{name} has shape {got}, expected {pretty}. Hint: {hint}.")


def compare(name: str, mine, ref, atol: float = 1e-5, rtol: float = 1e-4) -> str:
    """Compare a learner's result with the reference; print and return the verdict.

    Verdicts: ``exact``, ``close`` (within tolerance) -- or a ``CheckError`` that
    says how far off the answer is and where the largest difference sits.
    """
    mine_t, ref_t = _as_tensor(name, mine), _as_tensor(name, ref)
    if mine_t.shape != ref_t.shape:
        raise CheckError(f"{name}: your answer has shape {tuple(mine_t.shape)} but the reference "
                         f"has shape {tuple(ref_t.shape)}.")
    if torch.equal(mine_t, ref_t):
        verdict = "exact"
    elif torch.allclose(mine_t.double(), ref_t.double(), atol=atol, rtol=rtol):
        verdict = "close"
    else:
        diff = (mine_t.double() - ref_t.double()).abs()
        where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        raise CheckError(f"{name}: not equal to the reference. Largest difference "
                         f"{diff.max().item():.3g} at index {where} "
                         f"(yours {mine_t[where].item():.4g}, reference {ref_t[where].item():.4g}).")
    print(f"{name:24s} | {verdict}")
    return verdict


def _as_tensor(name, x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckError(f"{name}: expected numbers or a tensor, got {type(x).__name__}.") from exc


# ---------------------------------------------------------------------------
# exercises: the learner's cell, then a hidden reference solution
# ---------------------------------------------------------------------------
#: What an exercise cell starts with: the learner replaces it with an answer.
TODO = None


def check_exercise(name: str, answer, check) -> bool | None:
    """Run ``check(answer)`` on a learner's answer to exercise ``name``; say what happened.

    An exercise has two cells: the learner's (``answer = TODO``, then this call)
    and, right after it, a collapsed cell tagged ``solution`` that runs the
    same check on the reference answer (so the test suite checks it too).
    ``answer`` still ``TODO``: a friendly note, no error, so Run All goes on.
    A wrong answer raises ``CheckError`` with ``check``'s message, without a
    traceback. ``check`` raises (``CheckError`` or ``AssertionError``) when the
    answer is wrong; anything else it raises is reported as a bug in the answer.
    """
    if answer is TODO:
        print(f"Exercise {name}: not answered yet. Write your answer in this cell and run it again "
              f"(a reference solution is in the next cell, collapsed: click it to show it).")
        return None
    try:
        check(answer)
    except CheckError:
        raise
    except AssertionError as exc:
        raise CheckError(f"exercise {name}: {exc or 'not right yet'}") from None
    except Exception as exc:  # the learner's code failed inside the check: say so, briefly
        raise CheckError(f"exercise {name}: your answer raised {type(exc).__name__}: {exc}") from None
    print(f"Exercise {name}: correct.")
    return True


def require(namespace: dict, *names: str, made_by: str) -> None:
    """Stop with a clear message if a cell runs before the cells that define ``names``.

    ``require(globals(), "history", made_by="the training cell of section 3")``.
    """
    missing = [n for n in names if n not in namespace]
    if missing:
        raise CheckError(f"this cell needs {', '.join(f'`{n}`' for n in missing)}, made by {made_by}. "
                         f"Run the cells above first (Run -> Run All Above Selected Cell).")
