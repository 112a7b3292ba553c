"""Configuration: local defaults work; production refuses development secrets."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from stopapp import create_app
from stopapp.config import Config


def test_production_refuses_to_start_with_default_secrets(monkeypatch):
    monkeypatch.setenv("STOPAPP_ENV", "production")
    with pytest.raises(
        RuntimeError, match="SECRET_KEY, DATA_ENCRYPTION_KEY, RECEIPT_KEY, PHOTO_DIGEST_KEY"
    ):
        create_app()


def test_production_refuses_a_development_key_kept_for_rotation(monkeypatch):
    monkeypatch.setenv("STOPAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("RECEIPT_KEY", "r" * 40)
    monkeypatch.setenv("PHOTO_DIGEST_KEY", "p" * 40)
    dev = Config().DATA_ENCRYPTION_KEY
    monkeypatch.setenv("DATA_ENCRYPTION_KEY", f"{Fernet.generate_key().decode()},{dev}")
    with pytest.raises(RuntimeError, match="DATA_ENCRYPTION_KEY"):
        create_app()


def test_production_starts_with_real_secrets(monkeypatch):
    monkeypatch.setenv("STOPAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("RECEIPT_KEY", "r" * 40)
    monkeypatch.setenv("PHOTO_DIGEST_KEY", "p" * 40)
    monkeypatch.setenv("DATA_ENCRYPTION_KEY", Fernet.generate_key().decode())
    assert create_app().config["SECRET_KEY"] == "s" * 40


def test_production_refuses_the_development_photo_digest_key(monkeypatch):
    # Published in this repository, it would let anyone recompute the digests of the retry
    # window from a photo and check them against a stolen database.
    monkeypatch.setenv("STOPAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("RECEIPT_KEY", "r" * 40)
    monkeypatch.setenv("DATA_ENCRYPTION_KEY", Fernet.generate_key().decode())
    with pytest.raises(RuntimeError, match=r"set PHOTO_DIGEST_KEY$"):
        create_app()


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAX_PHOTOS_PER_REPORT", "7")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    config = Config.from_env()
    assert config.MAX_PHOTOS_PER_REPORT == 7
    assert config.REDIS_URL == "redis://127.0.0.1:6379/3"


def test_fractional_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DUPLICATE_TEXT_SIMILARITY", "0.45")
    monkeypatch.setenv("DUPLICATE_RADIUS_M", "400")
    config = Config.from_env()
    assert (config.DUPLICATE_TEXT_SIMILARITY, config.DUPLICATE_RADIUS_M) == (0.45, 400)
