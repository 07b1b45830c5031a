"""Figure 2: one QAT training step (W4A4, vgg_small, batch 128) against the float step and torch.ao's QAT;
the first convolution's input gradient (`qkit.quant.conv_grad`) against torch's; PTQ calibration + evaluation
against float evaluation."""

from __future__ import annotations

import copy
import warnings

import torch
import torch.ao.quantization as tao
import torch.nn.functional as F
from torch import nn

from benchmarks._timing import Figure, figure, time_interleaved
from qkit.models import build_model
from qkit.quant import QuantSpec, post_training_quantize, quantize_model, set_mode
from qkit.quant.conv_grad import input_grad_matmul

WEIGHT = QuantSpec(4, symmetric=True, per_channel=True)  # the W4A4 configuration the target is about
ACT = QuantSpec(4)
CALIB_BATCHES = 8
# A QAT step's time varies by +-15% from step to step here (page faults on fresh tensors, a shared host), so
# each candidate's median is over 25 interleaved steps; across runs the LSQ ratio still spread 1.03-1.12.
QAT_REPS = 25


def qkit_qat(model: nn.Module, method: str) -> nn.Module:
    """W4A4 QAT copy of `model` with `method` for weights and activations, quantizing (STE) from step one."""
    weight = WEIGHT if method == "uniform" else QuantSpec(4, method=method)
    return set_mode(quantize_model(model, weight=weight, act=QuantSpec(4, method=method)), "quant")


def torch_ao_qat(model: nn.Module) -> nn.Module:
    """torch's documented eager-mode QAT recipe: fuse conv-bn-relu, default 8-bit x86 qconfig, prepare_qat."""
    qat = copy.deepcopy(model).train()
    children = list(qat.features.named_children())
    triples = [
        [f"features.{children[i + k][0]}" for k in range(3)]
        for i in range(len(children) - 2)
        if [type(children[i + k][1]) for k in range(3)] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    ]
    with warnings.catch_warnings():  # torch.ao.quantization announces its own deprecation
        warnings.simplefilter("ignore")
        qat = tao.fuse_modules_qat(qat, triples)
        qat.qconfig = tao.get_default_qat_qconfig("x86")
        return tao.prepare_qat(qat)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """A closure running one SGD step of `model` on `(x, y)`."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _qat_figures(model: nn.Module, x: torch.Tensor, y: torch.Tensor, reps: int) -> list[Figure]:
    steps = {
        "float": train_step(model, x, y),
        "uniform": train_step(qkit_qat(model, "uniform"), x, y),
        "lsq": train_step(qkit_qat(model, "lsq"), x, y),
        "torch_ao": train_step(torch_ao_qat(model), x, y),
    }
    t = time_interleaved(steps, reps, warmup=2)
    return [
        figure(
            "qat_step.uniform", t["uniform"], t["float"], "s", "<= 1.15", "W4A4 uniform (STE) vs float step"
        ),
        figure(
            "qat_step.uniform_vs_torch_ao",
            t["uniform"],
            t["torch_ao"],
            "s",
            "<= 1.0",
            "qkit W4A4 step vs torch.ao prepare_qat 8-bit step",
        ),
        figure("qat_step.lsq", t["lsq"], t["float"], "s", "<= 1.10", "W4A4 LSQ vs float step"),
        figure(
            "qat_step.torch_ao", t["torch_ao"], t["float"], "s", None, "torch.ao QAT vs float step (context)"
        ),
    ]


def _conv_input_grad_figure(model: nn.Module, x: torch.Tensor, reps: int) -> Figure:
    """The input gradient of `model`'s first convolution: qkit's matmul + col2im against torch's backward."""
    conv = model.features[0]
    grad = torch.randn_like(conv(x))
    weight = conv.weight.detach()
    spec = (
        [conv.out_channels],
        list(conv.stride),
        list(conv.padding),
        list(conv.dilation),
        False,
        [0, 0],
        1,
        [True, False, False],
    )
    t = time_interleaved(
        {
            "qkit": lambda: input_grad_matmul(grad, weight, conv, x.shape[-2:]),
            "torch": lambda: torch.ops.aten.convolution_backward(grad, x, weight, *spec),
        },
        reps,
    )
    note = f"{conv.in_channels}->{conv.out_channels} conv's input gradient vs torch's convolution_backward"
    return figure("qat_step.conv_input_grad", t["qkit"], t["torch"], "s", "<= 0.5", note)


def _ptq_figures(model: nn.Module, batches: list[torch.Tensor], reps: int) -> list[Figure]:
    model = model.eval()

    @torch.no_grad()
    def evaluate(m: nn.Module) -> None:
        for xb in batches:
            m(xb)

    def calibrate_and_evaluate() -> None:
        evaluate(post_training_quantize(model, batches, weight=WEIGHT, act=ACT, batches=CALIB_BATCHES))

    quantized = post_training_quantize(model, batches, weight=WEIGHT, act=ACT, batches=CALIB_BATCHES)
    t = time_interleaved(
        {
            "float": lambda: evaluate(model),
            "ptq": calibrate_and_evaluate,
            "eval": lambda: evaluate(quantized),
        },
        reps,
    )
    n = sum(len(b) for b in batches)
    return [
        figure(
            "ptq.calibrate_and_evaluate",
            t["ptq"],
            t["float"],
            "s",
            None,
            f"fold+calibrate {CALIB_BATCHES} batches + evaluate {n} images vs float evaluation",
        ),
        figure("ptq.evaluate", t["eval"], t["float"], "s", None, f"W4A4 model vs float, {n} images"),
    ]


def run(quick: bool) -> list[Figure]:
    """QAT steps on one fixed batch and PTQ on fixed batches of random 28x28 inputs (timing needs no data)."""
    torch.manual_seed(0)
    batch, reps, qat_reps = (8, 1, 1) if quick else (128, 9, QAT_REPS)
    model = build_model("vgg_small")
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    batches = [torch.randn(batch, 1, 28, 28) for _ in range(CALIB_BATCHES)]
    return (
        _qat_figures(model, x, y, qat_reps)
        + [_conv_input_grad_figure(model, x, qat_reps)]
        + _ptq_figures(model, batches, reps)
    )
