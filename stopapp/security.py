"""Secrets of reporters: receipts, idempotency keys and encrypted contact details.

Receipts. A receipt is the reporter's only credential. It must be the same on a retry of the
same submission, yet the database keeps only its hash. It is therefore derived, not drawn:
HMAC-SHA256 under RECEIPT_KEY of the client's idempotency key, truncated to 100 bits and
written in Crockford base32. The idempotency key is a random UUID from the phone, and the
database stores only a hash of it too, so neither a database dump nor the server key alone
recovers a receipt.

Contact details are encrypted with MultiFernet: the first key of DATA_ENCRYPTION_KEY encrypts,
every listed key decrypts, and `rotate_token` re-encrypts under the first key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from cryptography.fernet import Fernet, MultiFernet

# Crockford's base32: no I, L, O or U, so a receipt read aloud or copied by hand survives.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
RECEIPT_GROUPS = 5
RECEIPT_GROUP_LEN = 4
RECEIPT_BITS = RECEIPT_GROUPS * RECEIPT_GROUP_LEN * 5  # 100 bits


def sha256(data: bytes | str) -> bytes:
    """SHA-256 digest of bytes or UTF-8 text."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).digest()


def idempotency_key_hash(key: uuid.UUID, scope: str = "report") -> bytes:
    """The stored form of a client's idempotency key, namespaced by what it protects."""
    return sha256(f"{scope}:{key}")


def derive_receipt(receipt_key: str, idempotency_key: uuid.UUID) -> str:
    """The receipt for the report created under `idempotency_key` (100 bits, grouped)."""
    digest = hmac.new(receipt_key.encode(), idempotency_key.bytes, hashlib.sha256).digest()
    number = int.from_bytes(digest, "big") >> (256 - RECEIPT_BITS)
    chars = []
    for _ in range(RECEIPT_GROUPS * RECEIPT_GROUP_LEN):
        chars.append(_ALPHABET[number & 31])
        number >>= 5
    text = "".join(reversed(chars))
    return "-".join(
        text[i : i + RECEIPT_GROUP_LEN] for i in range(0, len(text), RECEIPT_GROUP_LEN)
    )


def normalise_receipt(receipt: str) -> str:
    """Uppercase, without separators, with look-alike letters folded to digits."""
    return "".join(ch for ch in receipt.upper() if ch.isalnum()).translate(_CONFUSABLE)


def receipt_hash(receipt: str) -> bytes:
    """The stored form of a receipt. Its 100 random bits make a slow hash unnecessary."""
    return sha256("receipt:" + normalise_receipt(receipt))


def receipt_matches(receipt: str | None, stored_hash: bytes | None) -> bool:
    """Constant-time check of a presented receipt against the stored hash."""
    presented = receipt_hash(receipt or "")
    return hmac.compare_digest(presented, stored_hash or b"")


class ContactCipher:
    """Encrypts reporter contact details at rest, with rotatable keys."""

    def __init__(self, keys: str) -> None:
        parsed = [k.strip() for k in keys.split(",") if k.strip()]
        if not parsed:
            raise ValueError("DATA_ENCRYPTION_KEY holds no key")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in parsed])

    def encrypt(self, value: dict) -> bytes:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def decrypt(self, token: bytes) -> dict:
        return json.loads(self._fernet.decrypt(bytes(token)))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt `token` under the first key."""
        return self._fernet.rotate(bytes(token))
