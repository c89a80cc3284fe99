"""Notebook 00's myth-or-fact quiz about how ChatGPT learns from its users.

Each question is a popular claim with *neutral* options ("True", "False", or a
rival claim): an option's label never gives its verdict away. The explanation
of an option appears only after it is picked -- the HF course's habit: a quiz
answer explains why each wrong option is wrong. Every question names the
notebook whose experiment tests it (or says "planned: notebook 10" for a
notebook not yet in this release) and its sources: title, publisher, date, link.
Claims about how OpenAI uses data are dated by ``AS_OF``: policies change, so
re-read the sources before teaching.

All text here is plain text: ipywidgets' labels do not render markdown.
Two front ends share the data: ``show_quiz()`` (clickable widgets) and
``check_answer(number, "a")`` (plain text, for viewers without widgets).
"""
from __future__ import annotations

import html
from dataclasses import dataclass

from utils.checks import CheckError
from utils.paths import NOTEBOOK_DIR

#: Notebooks that are designed but not yet in this release: number -> title.
PLANNED = {"10": "Limits"}


@dataclass(frozen=True)
class Source:
    """Where a claim comes from: shown with the explanation and in notebook 00's Sources cell."""
    title: str
    by: str  # publisher or authors
    date: str  # publication date (YYYY-MM-DD; YYYY-MM for an arXiv paper), or "read <when>" for a page that changes
    url: str

    def cite(self) -> str:
        return f"{self.by}, \"{self.title}\" ({self.date}), {self.url}"


HELP_DATA = Source("How your data is used to improve model performance", "OpenAI help centre", "read late 2026",
                   "https://help.openai.com/en/articles/5722486-how-your-data-is-used-to-improve-model-performance")
MEMORY_POST = Source("Memory and new controls for ChatGPT", "OpenAI", "2024-02-13",
                     "https://openai.com/index/memory-and-new-controls-for-chatgpt/")
API_POST = Source("Introducing ChatGPT and Whisper APIs", "OpenAI", "2023-03-01",
                  "https://openai.com/index/introducing-chatgpt-and-whisper-apis/")
SYCOPHANCY_POST = Source("Expanding on what we missed with sycophancy", "OpenAI", "2025-05-02",
                         "https://openai.com/index/expanding-on-sycophancy/")
SHARMA_2023 = Source("Towards Understanding Sycophancy in Language Models", "Sharma et al.", "2023-10",
                     "https://arxiv.org/abs/2310.13548")
GPT3_PAPER = Source("Language Models are Few-Shot Learners", "Brown et al.",
                    "2020-05", "https://arxiv.org/abs/2005.14165")
PETRONI_2019 = Source("Language Models as Knowledge Bases?", "Petroni et al.", "2019-09",
                      "https://arxiv.org/abs/1909.01066")

#: What the policy claims were read from, and when. The help centre changes without notice.
AS_OF = f"OpenAI help centre, \"{HELP_DATA.title}\", {HELP_DATA.date}"


@dataclass(frozen=True)
class Option:
    text: str  # a neutral label: "True", "False" or a rival claim, never a verdict with its reason
    correct: bool
    why: str  # shown after the option is picked


@dataclass(frozen=True)
class Experiment:
    """An experiment of the course that tests the claim."""
    notebook: str  # "05"
    what: str  # what it measures, as a noun phrase

    def describe(self) -> str:
        """'Tested in notebook 05: ...', or 'Planned: notebook 10 ...' for a notebook not in this release yet."""
        if notebook_label(self.notebook).startswith("planned"):
            return f"Planned: notebook {self.notebook} (not in this release yet) will test it: {self.what}."
        return f"Tested in notebook {self.notebook}: {self.what}."


@dataclass(frozen=True)
class Question:
    claim: str
    options: tuple[Option, ...]
    tests: tuple[Experiment, ...]  # empty for a pure policy fact, which no experiment can test
    sources: tuple[Source, ...]


def notebook_label(number: str) -> str:
    """'notebook 05' if it ships with this release, 'planned: notebook 10' if it is designed but not here yet."""
    if any(NOTEBOOK_DIR.glob(f"{number}_*.ipynb")):
        return f"notebook {number}"
    if number in PLANNED:
        return f"planned: notebook {number}"
    raise ValueError(f"notebook {number} is neither in {NOTEBOOK_DIR} nor planned (PLANNED: {sorted(PLANNED)})")


QUIZ = (
    Question("\"ChatGPT learns from every conversation, while you chat.\"", (
        Option("True", False,
               "Nothing is trained during a chat: the weights stay fixed while you talk. The model adapts only "
               "through the text in its context window (in-context learning, named in the GPT-3 paper)."),
        Option("False", True,
               "Inside a chat the weights are fixed; the model adapts through the text in its context "
               "window, and a fresh chat starts without it."),
        Option("Only if 'Improve the model for everyone' is switched on", False,
               "That setting decides whether a conversation may be used to train a later version, not whether "
               "the model changes while you chat. During the chat it does not change either way."),
    ), (Experiment("05", "a parameter checksum, identical before and after the chats; a pattern learned on its "
                   "second appearance and forgotten in a fresh context"),),
        (GPT3_PAPER, HELP_DATA)),
    Question("\"ChatGPT can remember what you told it in an earlier chat.\"", (
        Option("True", True,
               "When memory is switched on: saved memories are stored text that is put into the context "
               "of new chats, and you can view and delete them (OpenAI announced memory on 2024-02-13)."),
        Option("False", False,
               "With memory switched on it can: saved memories are stored text that is put into the context of "
               "new chats (OpenAI announced memory on 2024-02-13). With memory off, a new chat starts blank."),
        Option("Only by fine-tuning its weights on your chats", False,
               "Memory is not fine-tuning: memories are stored text put into the context of a new chat, like a "
               "fact you state earlier in the same chat. Context, not weights."),
    ), (Experiment("05", "a fact put into the context as a memory is used in a fresh chat; no weight changes"),),
        (MEMORY_POST,)),
    Question("\"ChatGPT never learns from its users.\"", (
        Option("True", False,
               "Consumer ChatGPT conversations may be used to train future models unless the user opts out."),
        Option("False", True,
               "Learning from users happens across versions: conversations and feedback are collected, "
               "filtered and trained on later, unless the user opts out."),
        Option("Only through the thumbs-up/down buttons", False,
               "Feedback is one route, but the conversations themselves may also be used to train future models "
               "unless the user turns off 'Improve the model for everyone'."),
    ), (Experiment("09", "a version 2 trained on simulated users' filtered feedback, compared with version 1"),),
        (HELP_DATA,)),
    Question("\"If I turn off 'Improve the model for everyone', nothing I do is ever used for training.\"", (
        Option("True", False,
               "There is a carve-out: when you give a thumbs up or down, the whole conversation tied to that "
               "feedback may be used for training even if you opted out. And the opt-out applies only to "
               "conversations from then on."),
        Option("False", True,
               "Feedback you give (thumbs up or down) can bring the whole conversation it belongs to into "
               "training even after the opt-out, which applies only to conversations from then on."),
    ), (Experiment("09", "simulated users who opt out: their data is absent from training, except what the "
                   "feedback carve-out allows"),),
        (HELP_DATA,)),
    Question("\"By default, data sent through OpenAI's API is not used to train its models.\"", (
        Option("True", True,
               "Since 2023-03-01, data sent through the API is not used for training unless the "
               "organisation opts in; business offerings are not trained on by default either. Consumer "
               "ChatGPT is different (see the opt-out question)."),
        Option("False", False,
               "Since 2023-03-01, data sent through the API is not used for training unless the organisation "
               "opts in (OpenAI's API launch post of that day); the help centre (read late 2026) says the same."),
    ), (), (API_POST, HELP_DATA)),
    Question("\"More thumbs-up feedback can only make the model better.\"", (
        Option("True", False,
               "People also reward agreement. In April 2025 OpenAI rolled back a GPT-4o update that had become "
               "sycophantic. Its post-mortem (2025-05-02) says the update added a reward signal based on "
               "thumbs-up/down data, and that OpenAI believes this, together with the update's other changes, "
               "weakened the main reward signal that had been holding sycophancy in check."),
        Option("False", True,
               "Feedback carries the raters' biases (OpenAI's post-mortem of 2025-05-02: user feedback "
               "\"can sometimes favor more agreeable responses\"; Sharma et al. 2023 found sycophancy in five "
               "assistants trained on human feedback), and it can be poisoned."),
        Option("It can only get worse if someone poisons the feedback", False,
               "Poisoning is one risk, but honest feedback can do harm too: people tend to prefer answers that "
               "agree with them, so a model trained to please them can become sycophantic (OpenAI's post-mortem "
               "of 2025-05-02; Sharma et al. 2023)."),
    ), (Experiment("09", "agreeable users as the judge: better on average, worse for the users who were wrong; "
                   "a backdoor planted by a few malicious ones"),),
        (SYCOPHANCY_POST, SHARMA_2023)),
    Question("\"A plain language model, with no search tool, knows facts from the text it was pretrained on.\"", (
        Option("True", True,
               "A plain language model has no lookup: facts end up in its weights from pretraining text "
               "that states them (Petroni et al. 2019 probed this in real models). It also answers, just as "
               "fluently, about things that text never mentioned."),
        Option("False", False,
               "Without a search tool there is nothing to look facts up in: what the model knows is stored in its "
               "weights by pretraining on text that states those facts (Petroni et al. 2019)."),
    ), (Experiment("04", "the recall of TinyWorld's facts after pretraining"),
        Experiment("06", "confident answers about characters the corpus never mentions")),
        (PETRONI_2019,)),
)


def sources() -> list[Source]:
    """Every source the quiz cites, once each, in order of first use (notebook 00 lists them)."""
    seen = []
    for question in QUIZ:
        seen += [s for s in question.sources if s not in seen]
    return seen


def explain(question: Question, option: Option) -> str:
    """The plain-text feedback for one pick: verdict, why, the course's tests, the sources."""
    verdict = "Right." if option.correct else "Not quite."
    lines = [f"{verdict} {option.why}"]
    lines += [t.describe() for t in question.tests] or ["A policy fact: no experiment can test it; see the source."]
    lines += [f"Source: {s.by}, \"{s.title}\" ({s.date})." for s in question.sources]
    return "\n".join(lines)


def question_text(number: int) -> str:
    """Question ``number`` (from 1) with its lettered options, as plain text."""
    question = _question(number)
    options = [f"  {letter}) {o.text}" for letter, o in zip(_letters(question), question.options)]
    return "\n".join([f"{number}. {question.claim}", *options])


def check_answer(number: int, choice: str | None) -> bool | None:
    """The text version of the quiz: print the explanation for ``choice`` ('a', 'b', ...) of question ``number``.

    ``choice=None`` prints the question and its options. Returns whether the
    choice is right (``None`` when there was no choice yet).
    """
    question = _question(number)
    letters = _letters(question)
    if choice is None:
        print(question_text(number))
        print(f"Set your answer to one of {', '.join(repr(c) for c in letters)} and run the cell again.")
        return None
    if not isinstance(choice, str) or choice.strip().lower() not in tuple(letters):
        raise CheckError(f"question {number}: answer with one of {', '.join(letters)} (a string such as "
                         f"\"{letters[0]}\"), not {choice!r}.")
    option = question.options[letters.index(choice.strip().lower())]
    print(explain(question, option))
    return option.correct


def show_quiz() -> None:
    """The quiz as clickable widgets (ipywidgets): pick an option, then read why."""
    import ipywidgets as widgets
    from IPython.display import display
    for number, question in enumerate(QUIZ, 1):
        buttons = widgets.RadioButtons(options=[o.text for o in question.options], value=None,
                                       layout={"width": "max-content"})
        feedback = widgets.HTML()

        def on_pick(change, question=question, feedback=feedback):
            option = next(o for o in question.options if o.text == change["new"])
            feedback.value = "<br>".join(html.escape(line) for line in explain(question, option).split("\n"))

        buttons.observe(on_pick, names="value")
        display(widgets.VBox([widgets.HTML(f"<b>{number}. {html.escape(question.claim)}</b>"), buttons, feedback]))


def _question(number) -> Question:
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(QUIZ):
        raise CheckError(f"there are questions 1 to {len(QUIZ)}: pass the question's number as an int, "
                         f"not {number!r}.")
    return QUIZ[number - 1]


def _letters(question: Question) -> str:
    return "abcdefgh"[: len(question.options)]
