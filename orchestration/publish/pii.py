"""customer_key: the keyed hash that replaces customer_id in every BI table.

customer_key = HMAC-SHA256(key, customer_id) as 64 lowercase hex characters, the key being
``CarteraResource.pii_key()`` (``CARTERA_PII_KEY``). Without the key nobody can link a
customer_key back to a customer, not even by hashing a list of candidate ids.

DuckDB has ``sha256`` but no HMAC, so the HMAC is spelled out from its definition
(RFC 2104): ``H((K ^ opad) || H((K ^ ipad) || m))``. The two padded keys are computed here
in Python and handed to DuckDB as *bound parameters*: the key never appears in SQL text,
in the catalog (no macro holds it), in logs or in error messages. Vectorised in DuckDB this
costs about 0.5 s for 700k ids; ``tests/publish`` checks it against Python's ``hmac``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

_BLOCK = 64  # SHA-256 block size in bytes


@dataclass(frozen=True)
class HmacPads:
    """The key, pre-mixed with ipad/opad. Its repr hides the bytes (no secret in logs)."""

    inner: bytes
    outer: bytes

    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "HmacPads(<secret>)"

    def params(self) -> dict[str, bytes]:
        """Named parameters for :data:`CUSTOMER_KEY_SQL`."""
        return {"hmac_inner": self.inner, "hmac_outer": self.outer}


def hmac_pads(key: bytes) -> HmacPads:
    if not key:
        raise ValueError("the customer_key secret is empty")
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return HmacPads(
        inner=bytes(b ^ 0x36 for b in key),
        outer=bytes(b ^ 0x5C for b in key),
    )


def customer_key_sql(column: str = "customer_id") -> str:
    """SQL expression for customer_key of ``column`` (needs :meth:`HmacPads.params`)."""
    return (
        f"sha256($hmac_outer || unhex(sha256($hmac_inner || encode(CAST({column} AS VARCHAR)))))"
    )


def customer_key(key: bytes, customer_id: str) -> str:
    """Reference implementation (Python's hmac), used by tests and ad-hoc look-ups."""
    return hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()


# Columns that identify a person: none of them may reach a BI table.
PII_COLUMNS = frozenset(
    {"customer_id", "document_type", "document_number", "full_name", "phone", "email"}
)
