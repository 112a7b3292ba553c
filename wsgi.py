"""The production entry point: `gunicorn wsgi:app`."""

from stopapp import create_app

app = create_app()
