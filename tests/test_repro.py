"""utils.repro: seeds, thread counts and the bf16 decision."""
import torch

from utils import seed_everything, setup
from utils.repro import bf16_is_fast, n_threads, torch_threads


def test_seeding_makes_runs_repeat():
    seed_everything(3)
    a = torch.randn(4)
    seed_everything(3)
    assert torch.equal(a, torch.randn(4))
    seed_everything(4)
    assert not torch.equal(a, torch.randn(4))


def test_setup_caps_threads_and_returns_cpu():
    with torch_threads(torch.get_num_threads()):  # restore the test session's setting afterwards
        assert setup(seed=0, quiet=True) is None  # nothing to echo in a notebook's first cell
        assert 1 <= torch.get_num_threads() <= 2


def test_threads_follow_the_environment_variable(monkeypatch):
    monkeypatch.setenv("COURSE_THREADS", "1")
    assert n_threads() == 1
    monkeypatch.delenv("COURSE_THREADS")
    assert 1 <= n_threads() <= 2


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


def test_bf16_decision_follows_the_cpu_flags():
    flags = open("/proc/cpuinfo").read() if __import__("os").path.exists("/proc/cpuinfo") else ""
    assert bf16_is_fast() == ("amx_bf16" in flags or "avx512_bf16" in flags)
