"""The STOP APP backend core: configuration, models and the services that hold the rules."""

from stopapp.app import create_app

__all__ = ["create_app"]
