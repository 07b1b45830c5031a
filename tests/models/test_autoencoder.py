import math

import pytest
import torch

from qkit.models import build_model
from qkit.models.autoencoder import HierarchicalAutoencoder, logistic_mixture_nll
from qkit.seeding import seeded
from qkit.vq import VECTOR_QUANTIZERS


def _tiny(**kw) -> HierarchicalAutoencoder:
    options = dict(levels=2, num_codebooks=2, codebook_size=4, embed_dim=2, channels=8) | kw
    with seeded(0):
        return build_model("hierarchical_autoencoder", in_channels=1, input_size=8, **options)


@pytest.mark.parametrize("quantizer", VECTOR_QUANTIZERS.names())
@pytest.mark.parametrize("likelihood", ["categorical", "logistic_mixture"])
def test_forward_shapes_for_every_quantizer(quantizer, likelihood):
    model = _tiny(quantizer=quantizer, likelihood=likelihood, mixtures=2).eval()  # no codebook update
    pixels = torch.randint(0, 256, (3, 1, 8, 8)).float()
    out = model(pixels)
    channels = 256 if likelihood == "categorical" else 3 * 2
    assert out.params.shape == (3, channels, 8, 8)
    codebooks = len(model.quantizers[0].codebooks)
    assert [tuple(i.shape) for i in out.indices] == [(3, codebooks, 1, 1), (3, codebooks, 2, 2)]  # top first
    assert model.nll(out.params, pixels).shape == (3,)
    assert model.reconstruct(out.params).shape == pixels.shape
    assert torch.allclose(model.decode_indices(out.indices), out.params, atol=1e-5)


def test_three_levels_on_rgb():
    model = build_model(
        "hierarchical_autoencoder",
        in_channels=3,
        input_size=32,
        levels=3,
        channels=8,
        embed_dim=2,
        codebook_size=4,
    )
    out = model(torch.randint(0, 256, (2, 3, 32, 32)).float())
    assert out.params.shape == (2, 3 * 256, 32, 32)
    assert [i.shape[-1] for i in out.indices] == [2, 4, 8]


def test_uniform_categorical_decoder_costs_8_bits_per_dim():
    model = _tiny(likelihood="categorical")
    pixels = torch.randint(0, 256, (2, 1, 8, 8)).float()
    nll = model.nll(torch.zeros(2, 256, 8, 8), pixels)
    assert (nll / (64 * math.log(2))).tolist() == pytest.approx([8.0, 8.0])


def test_logistic_mixture_is_a_distribution_over_256_values():
    params = torch.randn(1, 3 * 4, 1, 1, generator=torch.Generator().manual_seed(0)).expand(256, -1, -1, -1)
    pixels = torch.arange(256).float().view(256, 1, 1, 1)
    probs = torch.exp(-logistic_mixture_nll(params, pixels, 4))
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-4)


def test_logistic_mixture_gradients_are_finite_at_the_edges():
    params = torch.randn(2, 6, 2, 2, requires_grad=True)
    pixels = torch.tensor([0.0, 255.0, 128.0, 1.0]).view(1, 1, 2, 2).expand(2, -1, -1, -1)
    logistic_mixture_nll(params, pixels, 2).sum().backward()
    assert torch.isfinite(params.grad).all()


def test_gradients_reach_the_encoder_through_the_quantizers():
    model = _tiny(quantizer="dq")
    pixels = torch.randint(0, 256, (2, 1, 8, 8)).float()
    out = model(pixels)
    model.nll(out.params, pixels).sum().backward()
    assert model.encoders[0][0].weight.grad.abs().sum() > 0
    assert all(p.weight.grad.abs().sum() > 0 for p in model.quantizers[0].projections)


def test_bad_options_rejected():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        _tiny(likelihood="mse")
    with pytest.raises(ValueError, match="multiple of 4"):
        build_model("hierarchical_autoencoder", input_size=30)
    with pytest.raises(ValueError, match="unknown vector quantizer 'pq'"):
        _tiny(quantizer="pq")


def test_vq_loss_is_beta_times_the_sum_over_levels_and_codebooks():
    """The authors' latent loss: every codebook's commitment MSE summed over codebooks and levels, x beta."""
    model = _tiny(quantizer="dq", commitment=0.5).eval()
    pixels = torch.randint(0, 256, (2, 1, 8, 8), generator=torch.Generator().manual_seed(1)).float()
    mses = []
    hooks = [
        cb.register_forward_hook(lambda m, i, o: mses.append(o[2]))
        for b in model.quantizers
        for cb in b.codebooks
    ]
    out = model(pixels)
    for h in hooks:
        h.remove()
    assert len(mses) == 4  # 2 levels x 2 codebooks
    assert out.vq_loss.item() == pytest.approx(0.5 * sum(m.item() for m in mses), rel=1e-6)
