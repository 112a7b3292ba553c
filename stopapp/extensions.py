"""Extension objects, created unbound and attached to an app by `init_app` in create_app."""

from __future__ import annotations

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from redis import Redis

from stopapp.config import Config

db = SQLAlchemy()
migrate = Migrate()


def settings() -> Config:
    """The typed configuration of the current app."""
    return current_app.extensions["stopapp.config"]


def redis_client() -> Redis:
    """The current app's Redis connection (shared; redis-py pools connections)."""
    return current_app.extensions["stopapp.redis"]
