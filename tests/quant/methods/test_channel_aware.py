import torch

from qkit.quant.methods.channel_aware import (
    clip_objectives,
    clip_quantize,
    per_channel_relative_error,
    search_clip,
)
from qkit.quant.primitives import channel_rows


def _unequal_channels() -> torch.Tensor:
    """ReLU'd activations [N, C, H, W]: 2 channels with 20x the spread of the other 14."""
    gen = torch.Generator().manual_seed(0)
    std = torch.ones(16)
    std[:2] = 20.0
    return torch.relu(torch.randn(64, 16, 4, 4, generator=gen) * std[None, :, None, None])


def test_channel_aware_clip_serves_the_majority_of_channels():
    x = _unequal_channels()
    rows = channel_rows(x, per_channel=True, axis=1)
    clip_ca, clip_pooled = search_clip(rows, 3, False, "channel"), search_clip(rows, 3, False, "pooled")
    assert clip_ca < clip_pooled
    err_ca = per_channel_relative_error(x, clip_quantize(x, clip_ca, 3, False))
    err_pooled = per_channel_relative_error(x, clip_quantize(x, clip_pooled, 3, False))
    assert err_ca.mean() < err_pooled.mean() and err_ca.median() < err_pooled.median()
    assert (err_ca < err_pooled).float().mean() > 0.5
    mse = lambda c: ((clip_quantize(x, c, 3, False) - x) ** 2).mean()  # noqa: E731
    assert mse(clip_pooled) <= mse(clip_ca)


def test_vectorized_objectives_match_a_direct_computation():
    x = _unequal_channels()
    clips = torch.tensor([1.0, 5.0, 30.0])
    channel = clip_objectives(channel_rows(x, per_channel=True, axis=1), clips, 2, False, "channel")
    pooled = clip_objectives(channel_rows(x, per_channel=True, axis=1), clips, 2, False, "pooled")
    for k, c in enumerate(clips):
        x_q = clip_quantize(x, c, 2, False)
        assert torch.isclose(channel[k], per_channel_relative_error(x, x_q).nanmean(), rtol=1e-4)
        assert torch.isclose(pooled[k], ((x_q - x) ** 2).mean(), rtol=1e-4)


def test_zero_channels_are_nan_and_signed_grid_is_qranges():
    x = torch.zeros(2, 3)
    x[:, 0] = torch.tensor([1.0, -1.0])
    assert per_channel_relative_error(x, x).isnan().tolist() == [False, True, True]
    # qrange(3, symmetric=True) is -4..3: with clip 1 the step is 1/3 and the grid spans [-4/3, 1]
    got = clip_quantize(torch.tensor([-2.0, -1.0, 0.5, 2.0]), 1.0, 3, True)
    assert torch.allclose(got, torch.tensor([-4 / 3, -1.0, 2 / 3, 1.0]))
