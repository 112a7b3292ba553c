"""`flask users ...`: staff accounts from the command line (scripts and tests use it too).

Nothing here prompts unless stdin is a terminal: a password is then asked for twice, hidden;
otherwise it is the first line of stdin. Each command is one unit of work and one audit event
(with no actor: the operator holds the server's shell).
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from stopapp.accounts import services as accounts
from stopapp.accounts.models import Role
from stopapp.db import unit_of_work
from stopapp.errors import ProblemError

users_cli = AppGroup("users", help="Staff accounts: create, tokens, TOTP, deactivate.")


class _Refused(click.ClickException):
    """A service's refusal, printed as `Error: <detail>` with the failing fields; exit code 1."""

    def __init__(self, error: ProblemError) -> None:
        fields = "".join(
            f"\n  {name}: {' '.join(texts)}" for name, texts in (error.errors or {}).items()
        )
        super().__init__(error.detail + fields)


def _read_password() -> str:
    stdin = sys.stdin
    if stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = stdin.readline()
    if not line:
        raise click.ClickException("Give the password on stdin (one line).")
    return line.rstrip("\r\n")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", default=None, help="Shown to colleagues; defaults to the email's name.")
def create(email: str, role: str, name: str | None) -> None:
    """Create a user; the password (at least 12 characters) is read from stdin.

    An admin is enrolled in TOTP at once; its otpauth:// URI is printed.
    """
    password = _read_password()
    try:
        with unit_of_work():
            user, uri = accounts.add_user(None, email, role, password, name=name)
            click.echo(f"created {user.role} {user.email} (id {user.id})")
    except ProblemError as exc:
        raise _Refused(exc) from None
    if uri:
        click.echo("TOTP enrolled; add this to the admin's authenticator app (shown once):")
        click.echo(uri)


@users_cli.command("token")
@click.argument("email")
@click.option("--label", default=None, help="What the token is for (a script, a partner tool).")
def token(email: str, label: str | None) -> None:
    """Issue an API token; it is printed alone on the last line, once."""
    try:
        with unit_of_work():
            row, secret = accounts.add_token(None, accounts.get_user(email), label)
            click.echo(f"token {row.id} for {email.strip().lower()}; it is not stored, keep it:")
    except ProblemError as exc:
        raise _Refused(exc) from None
    click.echo(secret)


@users_cli.command("revoke-token")
@click.argument("email")
def revoke_token(email: str) -> None:
    """Revoke every API token of a user."""
    try:
        with unit_of_work():
            count = accounts.revoke_tokens(None, accounts.get_user(email))
    except ProblemError as exc:
        raise _Refused(exc) from None
    click.echo(f"revoked {count} token(s)")


@users_cli.command("deactivate")
@click.argument("email")
def deactivate(email: str) -> None:
    """Deactivate a user (kept for the audit trail) and revoke their tokens."""
    try:
        with unit_of_work():
            accounts.deactivate_user(None, accounts.get_user(email))
    except ProblemError as exc:
        raise _Refused(exc) from None
    click.echo(f"deactivated {email.strip().lower()}")


@users_cli.command("totp")
@click.argument("email")
def totp(email: str) -> None:
    """Enrol (or replace) a user's TOTP second factor; prints its otpauth:// URI once."""
    try:
        with unit_of_work():
            uri = accounts.enrol_totp(None, accounts.get_user(email))
    except ProblemError as exc:
        raise _Refused(exc) from None
    click.echo("add this to the user's authenticator app (it holds the secret; shown once):")
    click.echo(uri)
