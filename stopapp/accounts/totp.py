"""TOTP second factor (RFC 6238, 6 digits, 30 s steps) with pyotp.

The shared secret is stored only encrypted with the Fernet keys of DATA_ENCRYPTION_KEY (the
first encrypts, every key decrypts; `flask rotate-contact-keys` re-encrypts these too), so a
database dump alone cannot mint codes. A code is accepted once: the step it belongs to is kept
in `totp_last_step`, and only later steps are accepted afterwards.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

from stopapp.accounts.models import User
from stopapp.extensions import settings
from stopapp.reports.models import utcnow
from stopapp.security import ContactCipher

ISSUER = "STOP APP"
STEP_S = 30
# One step either side of the server's clock: phones drift, and a code typed in the last seconds
# of its step arrives in the next one.
VALID_WINDOW_STEPS = 1


def _cipher() -> ContactCipher:
    return ContactCipher(settings().DATA_ENCRYPTION_KEY)


def _secret(user: User) -> str:
    return _cipher().decrypt(user.totp_secret_encrypted)["totp"]


def has_totp(user: User) -> bool:
    return user.totp_secret_encrypted is not None and user.totp_enabled_at is not None


def set_up_totp(user: User) -> str:
    """Give `user` a new TOTP secret (replacing any earlier one); returns its otpauth:// URI.

    The URI holds the secret: show it once, to its owner only (a QR code or the text).
    """
    secret = pyotp.random_base32()  # 160 bits
    user.totp_secret_encrypted = _cipher().encrypt({"totp": secret})
    user.totp_enabled_at = utcnow()
    user.totp_last_step = None
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def check_totp(user: User, code: str | None, now: datetime | None = None) -> bool:
    """Whether `code` is a valid, unused code of `user` at `now`; marks its step as used.

    The caller must hold the user's row lock (FOR UPDATE) so that two requests cannot both use
    one code.
    """
    if not has_totp(user) or not code:
        return False
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return False
    totp = pyotp.TOTP(_secret(user))
    step = int((now or utcnow()).timestamp()) // STEP_S
    last = user.totp_last_step if user.totp_last_step is not None else -1
    for candidate in range(step - VALID_WINDOW_STEPS, step + VALID_WINDOW_STEPS + 1):
        if candidate > last and hmac.compare_digest(totp.at(candidate * STEP_S), code):
            user.totp_last_step = candidate
            return True
    return False


def rotate_totp_secret(user: User) -> None:
    """Re-encrypt the stored secret under the first DATA_ENCRYPTION_KEY."""
    if user.totp_secret_encrypted is not None:
        user.totp_secret_encrypted = _cipher().rotate(user.totp_secret_encrypted)
