"""The account page: the user's own details, their authenticator app and their API tokens."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import segno
from flask import flash, redirect, render_template, url_for
from flask_login import login_required

from stopapp.accounts import self_service
from stopapp.accounts.totp import has_totp
from stopapp.db import unit_of_work
from stopapp.errors import ConflictError, ValidationError
from triage import blueprint
from triage.forms import EmptyForm, TokenForm, TotpConfirmForm
from triage.security import current_actor


def _account_page(status: int = 200, *, new_token: str | None = None,
                  token_form: TokenForm | None = None,
                  totp_form: TotpConfirmForm | None = None):
    with unit_of_work():
        actor = current_actor()
        tokens = self_service.own_tokens(actor)
        page = render_template(
            "triage/account.html", user=actor, tokens=tokens, new_token=new_token,
            totp_enabled=has_totp(actor), totp_pending=self_service.totp_pending(actor),
            token_form=token_form or TokenForm(formdata=None),
            totp_form=totp_form or TotpConfirmForm(formdata=None), form=EmptyForm(),
        )
    return page, status


@blueprint.route("/account")
@login_required
def account():
    return _account_page()


@blueprint.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    """Create a token and show it on this response only: it is never stored or shown again."""
    form = TokenForm()
    if not form.validate():
        return _account_page(422, token_form=form)
    try:
        with unit_of_work():
            _, token = self_service.create_own_token(current_actor(), form.label.data)
    except ValidationError as error:
        form.label.errors = error.errors["label"]
        return _account_page(422, token_form=form)
    return _account_page(201, new_token=token)


@blueprint.route("/account/tokens/<uuid:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: uuid.UUID):
    with unit_of_work():
        self_service.revoke_own_token(current_actor(), token_id)
    flash("The token is revoked: nothing can use it any more.")
    return redirect(url_for("triage.account"))


@blueprint.route("/account/totp", methods=["POST"])
@login_required
def start_totp():
    """A new secret, shown as a QR code drawn on the server (a PNG in a data: URL), once."""
    try:
        with unit_of_work():
            uri = self_service.start_totp_enrolment(current_actor())
    except ConflictError as error:
        flash(error.detail)
        return redirect(url_for("triage.account"))
    qr = segno.make(uri, error="m")
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    return render_template(
        "triage/totp.html", qr=qr.png_data_uri(scale=5, border=4),
        secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
        form=TotpConfirmForm(formdata=None),
    )


@blueprint.route("/account/totp/confirm", methods=["POST"])
@login_required
def confirm_totp():
    form = TotpConfirmForm()
    if not form.validate():
        return _account_page(422, totp_form=form)
    try:
        with unit_of_work():
            self_service.confirm_totp_enrolment(current_actor(), form.code.data)
    except ValidationError as error:
        form.code.errors = error.errors["code"]
        return _account_page(422, totp_form=form)
    except ConflictError as error:
        flash(error.detail)
        return redirect(url_for("triage.account"))
    flash("Your authenticator app is set up: signing in will ask for its code from now on.")
    return redirect(url_for("triage.account"))
