"""The foundation's promise: the small VGG-like CNN learns mnist5k, and 8-bit PTQ costs almost nothing."""

import time

import pytest

from qkit.data import dataset_info, load_dataset, make_loader
from qkit.models import build_model
from qkit.quant import QuantSpec, post_training_quantize
from qkit.seeding import seeded
from qkit.train import evaluate, fit


@pytest.mark.slow
def test_vgg_small_reaches_97_percent_and_8_bit_ptq_loses_at_most_half_a_point():
    info = dataset_info("mnist5k")
    train, test = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    with seeded(0):
        model = build_model("vgg_small", info.num_classes, info.in_channels, info.input_size)
    start = time.perf_counter()
    fit(model, make_loader(train, 128, shuffle=True, seed=0), epochs=4, lr=1e-3, device="cpu", progress=False)
    elapsed = time.perf_counter() - start
    test_loader, calib_loader = make_loader(test, 256), make_loader(train, 256)
    float_accuracy = evaluate(model, test_loader, device="cpu")["accuracy"]
    quantized = {
        bits: evaluate(
            post_training_quantize(
                model, calib_loader, weight=QuantSpec(bits), act=QuantSpec(bits), batches=4
            ),
            test_loader,
            device="cpu",
        )["accuracy"]
        for bits in (8, 4)
    }
    print(
        f"train {elapsed:.1f}s  fp32 {float_accuracy:.4f}  int8 {quantized[8]:.4f}  int4 {quantized[4]:.4f}"
    )
    assert float_accuracy >= 0.97
    assert float_accuracy - quantized[8] <= 0.005
