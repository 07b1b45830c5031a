"""qkit.seeding: seeded scopes reproduce their draws and leave every global generator as it was."""

import random

import numpy as np
import torch

from qkit.seeding import derive, generator, rng, seeded


def test_seeded_reproduces_and_restores_global_state():
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    with seeded(7):
        first = torch.nn.Linear(4, 2).weight.detach().clone()
    with seeded(7):
        second = torch.nn.Linear(4, 2).weight.detach().clone()
    assert torch.equal(first, second)
    after = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(after[0], expected[0]) and np.array_equal(after[1], expected[1])
    assert after[2] == expected[2]


def test_local_generators_and_derived_seeds_are_stable():
    assert torch.equal(torch.rand(4, generator=generator(5)), torch.rand(4, generator=generator(5)))
    assert rng(5).integers(0, 100) == rng(5).integers(0, 100)
    assert derive(0, "teacher") == derive(0, "teacher") != derive(0, "student")
    assert derive(0, "teacher") != derive(1, "teacher")
