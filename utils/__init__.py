"""How ChatGPT Learns: the helpers the course notebooks share.

Every notebook starts with ``from utils import setup; setup(seed=0)``.
"""
from utils.repro import pick_device, seed_everything, setup

__all__ = ["setup", "seed_everything", "pick_device"]
