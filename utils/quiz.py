"""Notebook 00's myth-or-fact quiz about how ChatGPT learns from its users.

Every option carries its explanation and the notebook that tests it (the HF
course's habit: a quiz answer explains why each wrong option is wrong). Claims
about OpenAI's data use carry their date and source in the option text itself
(``AS_OF``, "OpenAI, 2025-05-02", ...), so the quiz that notebook 00 shows is
self-contained; re-check them when policies change.
"""
from __future__ import annotations

from dataclasses import dataclass

AS_OF = "as of late 2026 (OpenAI's posts and help centre; re-check, policies change)"


@dataclass(frozen=True)
class Option:
    text: str
    correct: bool
    why: str
    notebook: str  # the notebook whose experiment tests this


@dataclass(frozen=True)
class Question:
    claim: str
    options: tuple[Option, ...]


QUIZ = (
    Question("\"ChatGPT learns from every conversation, while you chat.\"", (
        Option("True: each message updates its weights a little.", False,
               "Nothing is trained during a chat. You will check the parameter checksum before and "
               "after a 'conversation': it is identical.", "05"),
        Option("False: inside a chat the weights are fixed; it adapts through the text in its "
               "context window.", True,
               "In-context learning: a pattern seen once is used the second time, and forgotten "
               "in a fresh chat.", "05"),
    )),
    Question("\"ChatGPT never learns from its users.\"", (
        Option("True: it was trained once, on internet text.", False,
               f"Consumer conversations may be used to train *future* models unless the user "
               f"opts out ({AS_OF}).", "09"),
        Option("False: conversations and feedback can shape the *next* version.", True,
               "Learning from users happens across versions: data is collected, filtered and "
               "trained on later. You will train a v2 from simulated users' feedback.", "09"),
    )),
    Question("\"Saved memories change the model's weights.\"", (
        Option("True: memory is fine-tuning on my chats.", False,
               "Memories are stored text that is put into the context of new chats; you can view "
               f"and delete them ({AS_OF}; memory was announced 2024-02-13).", "05"),
        Option("False: memory is text added to the context, like custom instructions.", True,
               "Same mechanism as a fact stated earlier in the chat: context, not weights.", "05"),
    )),
    Question("\"If I turn off 'Improve the model for everyone', nothing I do is ever used for training.\"", (
        Option("True.", False,
               "The opt-out applies to new conversations, and when you give thumbs up/down the "
               f"whole conversation tied to that feedback may be used ({AS_OF}).", "09"),
        Option("Not quite: there is a carve-out for feedback you give.", True,
               "You will simulate users who opt out, and check their data is absent from training "
               "- except what the carve-out allows.", "09"),
    )),
    Question("\"More thumbs-up feedback can only make the model better.\"", (
        Option("True: people reward good answers.", False,
               "People also reward agreement. An April 2025 GPT-4o update that added a thumbs-based "
               "reward signal became sycophantic and was rolled back (OpenAI, 2025-05-02).", "09"),
        Option("False: feedback carries the raters' biases, and can be poisoned.", True,
               "You will reproduce sycophancy from agreeable raters and a backdoor from a few "
               "malicious ones.", "09"),
    )),
    Question("\"Where does the model's knowledge of facts come from?\"", (
        Option("It looks every fact up when you ask.", False,
               "A plain language model has no lookup: facts are stored in its weights by "
               "pretraining on text that states them.", "04"),
        Option("From the text it was pretrained on; it can still state things it never saw.", True,
               "You will measure fact recall after pretraining, and confident answers about "
               "characters the corpus never mentions.", "04"),
    )),
    Question("\"Data I send through the API trains the model by default.\"", (
        Option("True.", False,
               f"Since 2023-03-01 API data is not used for training by default ({AS_OF}).", "09"),
        Option("False.", True,
               "Business, Enterprise and Edu are not trained on by default either; consumer "
               "ChatGPT is different (see the opt-out question).", "09"),
    )),
)


def check_answer(number: int, choice: str | None) -> bool | None:
    """Print the explanation for ``choice`` ('a', 'b', ...) of question ``number`` (from 1)."""
    if not 1 <= number <= len(QUIZ):
        raise ValueError(f"there are questions 1 to {len(QUIZ)}, not {number}")
    question = QUIZ[number - 1]
    letters = "abcdefgh"[: len(question.options)]
    if choice is None:
        print(f"Pick one of {', '.join(letters)} and run the cell again.")
        return None
    if not isinstance(choice, str) or choice.lower() not in letters:
        raise ValueError(f"answer with one of {', '.join(letters)}, not {choice!r}")
    option = question.options[letters.index(choice.lower())]
    verdict = "Right." if option.correct else "Not quite."
    print(f"{verdict} {option.why} (tested in notebook {option.notebook})")
    return option.correct


def show_quiz() -> None:
    """The quiz as clickable widgets (ipywidgets): pick an option, read why."""
    import ipywidgets as widgets
    from IPython.display import display
    for i, question in enumerate(QUIZ, 1):
        buttons = widgets.RadioButtons(options=[o.text for o in question.options], value=None,
                                       layout={"width": "max-content"})
        feedback = widgets.HTML()

        def explain(change, question=question, feedback=feedback):
            option = next(o for o in question.options if o.text == change["new"])
            mark = "&#9989; Right." if option.correct else "&#10060; Not quite."
            feedback.value = f"{mark} {option.why} <i>(notebook {option.notebook})</i>"

        buttons.observe(explain, names="value")
        display(widgets.VBox([widgets.HTML(f"<b>{i}. {question.claim}</b>"), buttons, feedback]))
