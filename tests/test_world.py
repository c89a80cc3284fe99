"""TinyWorld: probabilities, exact entropy, determinism, and the shipped data."""
import math
import random

import pytest

from utils import world as tw
from utils.paths import MissingDataError


@pytest.fixture(scope="module")
def world():
    return tw.World(seed=0)


def test_every_choice_is_a_probability_distribution():
    groups = [tw.OPENINGS, tw.BODY, tw.CLOSINGS, tw.BODY_LENGTHS, *tw.FREE_SLOTS.values()]
    for options in groups:
        assert math.isclose(sum(p for _, p in options), 1.0, abs_tol=1e-12)
        assert len({o for o, _ in options}) == len(options), "options must be distinct"


def test_generation_is_deterministic(world):
    a, _ = world.stories(50, seed=7)
    b, _ = tw.World(seed=0).stories(50, seed=7)
    assert a == b
    assert [c.facts for c in tw.World(seed=0).characters] == [c.facts for c in world.characters]


def test_each_story_has_one_derivation_with_the_generators_probability(world):
    stories, nats = world.stories(300, seed=11)
    for story, n in zip(stories, nats):
        assert world.story_nats(story) == pytest.approx(n, abs=1e-9)


def test_every_sentence_of_a_template_is_unambiguous(world):
    """Exhaustively: no body sentence about Mia can come from two templates."""
    mia = world.by_name["Mia"]
    rng = random.Random(0)
    for template, _ in tw.BODY:
        for _ in range(40):
            text, _ = world._fill(template, mia, rng)  # one sentence from this template
            assert len(tw.sentence_derivations(text, tw.BODY, mia, world)) == 1, text


def test_exact_entropy_matches_monte_carlo(world):
    exact = world.exact_entropy()
    stories, nats = world.stories(4000, seed=5)
    mc_nats = sum(nats) / len(nats)
    mc_chars = sum(len(s) + 1 for s in stories) / len(stories)
    sem = (sum((x - mc_nats) ** 2 for x in nats) / len(nats)) ** 0.5 / len(nats) ** 0.5
    assert abs(exact["nats_per_story"] - mc_nats) < 4 * sem
    assert exact["chars_per_story"] == pytest.approx(mc_chars, rel=0.01)
    assert exact["nats_per_char"] == pytest.approx(mc_nats / mc_chars, rel=0.01)


def test_non_story_text_is_rejected(world):
    with pytest.raises(ValueError, match="not a TinyWorld story"):
        world.story_nats("Hello there.")


def test_unknown_names_never_appear_in_the_corpus():
    corpus = tw.load_corpus()
    text = " ".join(corpus.train[:3000])
    for name in tw.UNKNOWN_NAMES:
        assert f" {name} " not in text and f" {name}." not in text


def test_missing_data_names_the_command_that_rebuilds_it(tmp_path):
    with pytest.raises(MissingDataError, match="make data"):
        tw.load_corpus(tmp_path)


def test_story_about_gives_a_story_of_that_hero(world):
    rng = random.Random(0)
    for name in ("Mia", "Leo"):
        story, nats = world.story_about(world.by_name[name], rng)
        assert tw.story_hero(story, world).name == name and world.story_nats(story) == pytest.approx(nats)
