"""PGP for authorities: checking a public key on entry, and encrypting mail to it.

GnuPG does the cryptography (Debian's `gnupg`, driven by python-gnupg). The service keeps its
own keyring under GNUPG_HOME holding authorities' public keys only; no private key is ever
needed or stored. Encryption names the authority's exact fingerprint with `always_trust`: the
key was checked by an admin on entry, and naming the fingerprint means no other key in the
keyring (nor any web of trust) can ever be picked instead.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

import gnupg


class KeyRejected(ValueError):
    """The text is not a usable public key; the message says why (safe to show an admin)."""


class EncryptionFailed(RuntimeError):
    """GnuPG could not encrypt to the key (it expired, or the keyring is unusable)."""


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    # When encryption to it stops working (the primary key's or its encryption subkey's
    # expiry, whichever is first); None if it never expires.
    expires_at: datetime | None


def _epoch(value: str) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def inspect_public_key(armoured: str, now: datetime | None = None) -> KeyInfo:
    """Check that `armoured` is exactly one public key, not expired, able to encrypt.

    Done in a throw-away keyring so that a rejected key never reaches the service's one.
    Raises KeyRejected saying why.
    """
    if "PRIVATE KEY BLOCK" in armoured:
        raise KeyRejected("This is a private key: send the public key only.")
    if not armoured.isascii():
        # Armour is ASCII; python-gnupg would fail to hand anything else to gpg.
        raise KeyRejected("Send exactly one ASCII-armoured PGP public key.")
    now = now or datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="stopapp-gpg-") as home:
        gpg = gnupg.GPG(gnupghome=home)
        result = gpg.import_keys(armoured)
        if result.sec_imported:
            raise KeyRejected("This is a private key: send the public key only.")
        keys = gpg.list_keys()
    if len(keys) != 1:
        raise KeyRejected("Send exactly one ASCII-armoured PGP public key.")
    key = keys[0]
    if key["trust"] == "r":
        raise KeyRejected("This key has been revoked.")
    subkey_expiries = [
        _epoch(info["expires"])
        for info in key.get("subkey_info", {}).values()
        if "e" in info["cap"] and info["trust"] not in ("e", "r")
    ]
    # The latest-lasting encryption subkey keeps the key usable, within the primary's life.
    latest_sub = None if None in subkey_expiries or not subkey_expiries else max(subkey_expiries)
    expires_at = _earliest(_epoch(key["expires"]), latest_sub)
    if key["trust"] == "e" or (expires_at is not None and expires_at <= now):
        raise KeyRejected("This key has expired.")
    # gpg's capital E: the key as a whole, through a valid subkey, can encrypt.
    if "E" not in key["cap"]:
        raise KeyRejected("This key cannot encrypt (it has no valid encryption subkey).")
    return KeyInfo(fingerprint=key["fingerprint"], expires_at=expires_at)


_keyrings: dict[str, gnupg.GPG] = {}
# Fingerprints imported into each keyring by this process.
_imported: dict[str, set[str]] = {}


def _keyring(home: str) -> gnupg.GPG:
    """The service's keyring at `home` (created private to the service on first use)."""
    gpg = _keyrings.get(home)
    if gpg is None:
        os.makedirs(home, mode=0o700, exist_ok=True)
        os.chmod(home, 0o700)
        gpg = _keyrings[home] = gnupg.GPG(gnupghome=home)
        _imported[home] = set()
    return gpg


def _import(gpg: gnupg.GPG, home: str, armoured_key: str, fingerprint: str) -> None:
    imported = gpg.import_keys(armoured_key)
    if fingerprint not in (imported.fingerprints or []):
        raise EncryptionFailed("the authority's key could not be imported")
    _imported[home].add(fingerprint)


def _encrypt(gpg: gnupg.GPG, data: bytes, fingerprint: str):
    try:
        return gpg.encrypt(data, [fingerprint], always_trust=True, armor=True)
    except OSError:
        # gpg stopped reading (it refused before taking the whole message): a broken pipe.
        return None


def encrypt(data: bytes, armoured_key: str, fingerprint: str, home: str) -> bytes:
    """`data` encrypted (ASCII-armoured) to the key with `fingerprint` only.

    The key is imported into the service keyring before its first use in this process (and
    again should the keyring have lost it). Raises EncryptionFailed if GnuPG refuses.
    """
    gpg = _keyring(home)
    if fingerprint not in _imported[home]:
        _import(gpg, home, armoured_key, fingerprint)
    result = _encrypt(gpg, data, fingerprint)
    if result is None or not result.ok:
        _import(gpg, home, armoured_key, fingerprint)
        result = _encrypt(gpg, data, fingerprint)
    if result is None or not result.ok:
        raise EncryptionFailed(f"gpg: {result.status if result else 'broken pipe'}")
    return result.data
