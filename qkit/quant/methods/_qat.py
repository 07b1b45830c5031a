"""Checks the QAT methods share: bits 2..8 and the roles a method supports, each failure naming the method."""

from __future__ import annotations

from qkit._validate import check_bits
from qkit.quant.spec import QuantSpec

QAT_BITS = (2, 8)  # the bit-widths the QAT methods (and their level tables) support


def check_qat_spec(
    spec: QuantSpec, role: str, method: str, roles: tuple[str, ...] = ("weight", "act")
) -> None:
    """Raise a ValueError naming `method` for bits outside 2..8, an unsupported role, or per_channel."""
    check_bits(spec.bits, *QAT_BITS, name=f"bits for method {method!r}")
    if role not in roles:
        raise ValueError(f"method {method!r} quantizes {' and '.join(roles)} only, not {role!r}")
    if spec.per_channel:
        raise ValueError(f"method {method!r} is per-tensor; use per_channel=False")
