"""Signing in and out. The rules (delays, lockouts, TOTP) are stopapp.accounts.login's: this view
shows its refusals and starts the session."""

from __future__ import annotations

from datetime import timedelta

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from stopapp.accounts import login
from stopapp.reports.models import utcnow
from triage import blueprint
from triage.forms import SignInForm
from triage.security import SignedIn, safe_next


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    """GET: the form. POST: sign in and go to `next` (a page of this site only)."""
    target = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(target)
    form = SignInForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        try:
            user = login.sign_in(form.email.data, form.password.data, form.code.data or None,
                                 request.remote_addr or "unknown")
        except login.LoginThrottledError as refusal:
            until = utcnow() + timedelta(seconds=refusal.retry_after_s)
            form.form_errors.append(
                f"{refusal.detail} You can try again after {until:%H:%M:%S} UTC."
            )
            status, headers = 429, {"Retry-After": str(refusal.retry_after_s)}
        except login.TotpRequiredError as refusal:
            form.code.errors = [f"{refusal.detail} Enter your password again with it."]
            status = 422
        except login.LoginError as refusal:
            form.form_errors.append(refusal.detail)
            status = refusal.status if refusal.status == 403 else 422
        else:
            # A fresh session: nothing from before signing in (a planted cookie) carries over.
            session.clear()
            login_user(SignedIn(user))
            session.permanent = True
            return redirect(target)
    elif form.errors:
        status = 422
    return render_template("triage/sign_in.html", form=form, next=request.args.get("next")), \
        status, headers


@blueprint.route("/sign-out", methods=["POST"])
@login_required
def sign_out():
    """Only POST, with the CSRF token (checked before every POST of the blueprint): a link or an
    image elsewhere cannot sign anyone out."""
    logout_user()
    session.clear()
    flash("You have signed out.")
    return redirect(url_for("triage.sign_in"))
