"""utils.probe: fact recall is exactly the greedy test; per-token nats; the fact spans of a story."""
import torch

from utils.checkpoints import PRETRAINED, load_course_model
from utils.logprobs import token_logprobs
from utils.probe import fact_recall, fact_spans, greedy_completes, recall_prompts, right_padded, token_nats
from utils.sampling import generate
from utils.world import World, load_corpus


def test_right_padded_keeps_each_sequence_at_the_start():
    idx = right_padded([[1, 2, 3], [4]], pad_id=9)
    assert idx.tolist() == [[1, 2, 3], [4, 9, 9]]


def test_greedy_completes_agrees_with_greedy_generation(chat_gpt, tok):
    prompts = ["This is a story about Mia. She had a", "Leo lived in"]
    first = []
    for p in prompts:  # whatever the untrained model writes greedily is, by definition, 'completed'
        ids = torch.tensor([[tok.eot_id] + tok.encode(p)])
        first.append(tok.decode(generate(chat_gpt, ids, 3, temperature=0)[0, ids.size(1):].tolist()))
    assert greedy_completes(chat_gpt, tok, prompts, [w.lstrip() for w in first]) == [
        first[0].startswith(" "), first[1].startswith(" ")]
    assert greedy_completes(chat_gpt, tok, prompts, ["zzzz", "qqqq"]) == [False, False]


def test_token_nats_is_minus_token_logprobs(chat_gpt, tok):
    seqs = [[tok.eot_id] + tok.encode("Mia had a cat."), [tok.eot_id] + tok.encode("Hi")]
    nats = token_nats(chat_gpt, seqs, tok.pad_id)
    assert [len(n) for n in nats] == [len(s) - 1 for s in seqs]
    with torch.no_grad():
        ref = -token_logprobs(chat_gpt(torch.tensor([seqs[0][:-1]])), torch.tensor([seqs[0][1:]]))[0]
    torch.testing.assert_close(nats[0], ref)


def test_recall_prompts_cover_every_fact():
    world = World(0)
    rows = recall_prompts(world)
    assert len(rows) == 5 * len(world.characters)
    mia_pet = next(r for r in rows if r[0] == "Mia" and r[1] == "pet")
    assert mia_pet[2].endswith("She had a") and mia_pet[3] == world.by_name["Mia"].facts["pet"]


def test_fact_spans_skip_the_first_sentence():
    story = "Once upon a time, there was a baker called Mia. She had a cat. The end."
    spans = fact_spans(story)
    assert [story[a:b] for a, b in spans] == ["cat"]


def test_the_pretrained_model_recalls_nearly_every_fact(tok):
    recall = fact_recall(load_course_model(PRETRAINED), tok, load_corpus().world)
    assert recall["recall"] > 0.95
