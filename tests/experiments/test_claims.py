"""The verdict rule on constructed effects and noises, the claim record, and every claim's quoted source."""

import re
from pathlib import Path

import pytest

from qkit.experiments.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Claim,
    claims_table,
    count,
    decide,
    quoted_text,
    reading,
    sanity,
    verdict,
)


@pytest.mark.parametrize(
    "per_seed, threshold, noise, failed, expected",
    [
        ([2.0, 2.2, 1.9], 1.0, None, None, HOLDS),  # clear, above threshold and noise
        ([-2.0, -2.2, -1.9], 1.0, None, None, FAILS),  # clear the other way
        ([0.5, 0.6, 0.55], 1.0, None, None, INCONCLUSIVE),  # consistent but under the threshold
        ([3.0, -1.0, 2.5], 0.1, None, None, INCONCLUSIVE),  # above threshold, within its seed noise
        ([2.0, 2.0], 1.0, 2.5, None, INCONCLUSIVE),  # within a noise measured another way
        ([2.0, 2.2, 1.9], 1.0, None, "fp accuracy 0.11 < 0.5", INCONCLUSIVE),  # failed precondition
        ([5.0], 1.0, None, None, INCONCLUSIVE),  # one seed: no noise to compare with
        ([], 1.0, None, None, INCONCLUSIVE),
    ],
)
def test_verdict_rule(per_seed, threshold, noise, failed, expected):
    assert verdict(per_seed, threshold, noise, failed)[0] == expected


def test_noise_is_the_sample_std_of_the_per_seed_effects():
    _, effect, noise = verdict([1.0, 2.0, 3.0], threshold=0.1)
    assert effect == pytest.approx(2.0) and noise == pytest.approx(1.0)


def test_decide_records_why_in_the_evidence():
    claim = decide(
        "c",
        "A beats B",
        "a sentence",
        seeds=[0, 1],
        per_seed=[1.0, 1.2],
        threshold=0.5,
        unit="points",
        evidence="A 0.9 vs B 0.8",
        failed="B did not learn",
    )
    assert claim.verdict == INCONCLUSIVE and not claim.holds
    assert "precondition failed: B did not learn" in claim.evidence
    with pytest.raises(ValueError, match="2 seeds but 1"):
        decide("c", "s", "x", seeds=[0, 1], per_seed=[1.0], threshold=0.1, unit="", evidence="")


def test_claim_rejects_unknown_verdicts_kinds_and_missing_sources():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Claim("c", "s", "src", "maybe", "e")
    with pytest.raises(ValueError, match="kind must be one of"):
        Claim("c", "s", "src", HOLDS, "e", kind="check")
    with pytest.raises(ValueError, match="needs a source"):
        Claim("c", "s", "", HOLDS, "e")


def test_sanity_checks_are_counted_apart():
    claims = [
        decide("a", "s", "x", seeds=[0, 1], per_seed=[2, 2.1], threshold=1, unit="", evidence=""),
        decide("b", "s", "x", seeds=[0, 1], per_seed=[-2, -2.1], threshold=1, unit="", evidence=""),
        decide("c", "s", "x", seeds=[0, 1], per_seed=[0.1, 0.1], threshold=1, unit="", evidence=""),
        sanity("d", "params fall", "x", True, "1 > 0"),
    ]
    assert count(claims) == {HOLDS: 1, FAILS: 1, INCONCLUSIVE: 1, "sanity": 1}
    assert count([{"id": "old", "holds": True}]) == {HOLDS: 1, FAILS: 0, INCONCLUSIVE: 0, "sanity": 0}
    table = claims_table(claims[::-1])
    assert list(table["kind"]) == ["claim"] * 3 + ["sanity"]
    assert list(table["verdict"][:3]) == [INCONCLUSIVE, FAILS, HOLDS]


def test_reading_keeps_the_quoted_sentence_recoverable():
    source = reading("DE uses a distillation context [5].", "the student is scored by its KL to the teacher")
    assert source.startswith("reading: ") and quoted_text(source) == "DE uses a distillation context [5]."


PAPERS = Path(__file__).resolve().parents[3] / "shared" / "PAPERS.md"


def _abstracts() -> dict[str, str]:
    text = PAPERS.read_text()
    parts = re.split(r"^## (\d\d_\w+) — .*$", text, flags=re.M)
    return {parts[i]: " ".join(parts[i + 1].split()) for i in range(1, len(parts), 2)}


@pytest.mark.skipif(not PAPERS.exists(), reason="shared/PAPERS.md (the abstracts) is not beside the checkout")
@pytest.mark.parametrize(
    "module",
    ["weight_init", "direct_quantization", "factorizenet", "depthwise_quantization", "directed_evolution"],
)
def test_every_claim_quotes_its_abstract_exactly(module):
    """Each experiment declares its claims' sources in SOURCES; each quoted text is in the abstract."""
    import importlib

    experiment = importlib.import_module(f"qkit.experiments.{module}")
    abstract = _abstracts()[experiment.PAPER]
    sources = experiment.SOURCES
    assert sources, f"{module} declares no claim sources"
    for claim_id, source in sources.items():
        assert quoted_text(source) in abstract, f"{module}: {claim_id}'s source is not in the abstract"
