"""The admin pages: staff accounts, areas, the tag taxonomy, the audit trail and the authorities.

Every view is thin: it reads a form, calls one service in a unit of work and renders or
redirects (POST-redirect-GET with a flash message). The services decide who may act: admins
for everything here, supervisors also for the audit trail. A service's refusal is shown on the
form with what was typed kept.
"""

from __future__ import annotations

import uuid

import segno
from flask import flash, redirect, render_template, request, url_for
from flask_login import login_required

from stopapp.accounts import services as accounts
from stopapp.accounts.models import Role
from stopapp.accounts.permissions import require_role
from stopapp.accounts.totp import has_totp
from stopapp.areas import services as areas
from stopapp.audit import services as audit
from stopapp.db import unit_of_work
from stopapp.errors import ConflictError, ValidationError
from stopapp.extensions import settings
from stopapp.forwarding import services as forwarding
from stopapp.review import taxonomy
from triage import LARGER_FORM_BYTES, blueprint
from triage.admin_forms import (
    ROLE_LABELS,
    AreasUploadForm,
    AuditFilterForm,
    AuthorityForm,
    NewUserForm,
    RelabelForm,
    RoleForm,
    TagCodeForm,
)
from triage.forms import EmptyForm, show_refusal
from triage.security import current_actor

# Boundary files are larger than the JSON bodies the rest of the app takes (1 MiB).
MAX_AREA_FILE_BYTES = 50 * 1024 * 1024
LARGER_FORM_BYTES["triage.admin_areas"] = MAX_AREA_FILE_BYTES


def _admin():
    """The signed-in user if an admin. Raises UnauthorizedError or ForbiddenError (403 page)."""
    return require_role(current_actor(), Role.ADMIN)


def _qr(uri: str) -> str:
    return segno.make(uri, error="m").png_data_uri(scale=5, border=4)


def _handover(user, uri: str, status: int, why: str):
    """The page that shows a new admin secret once, for handing over in person."""
    return render_template("triage/admin_totp_handover.html", user=user, qr=_qr(uri),
                           uri=uri, why=why), status


# --------------------------------------------------------------------------------------------
# The start page


@blueprint.route("/admin")
@login_required
def admin():
    """Admins' start page: what each admin section is for."""
    with unit_of_work():
        _admin()
    return render_template("triage/admin_start.html")


# --------------------------------------------------------------------------------------------
# Users


@blueprint.route("/admin/users")
@login_required
def admin_users():
    with unit_of_work():
        users, _ = accounts.list_users(_admin())
        page = render_template("triage/admin_users.html", users=users, has_totp=has_totp,
                               role_labels=ROLE_LABELS)
    return page


@blueprint.route("/admin/users/new", methods=["GET", "POST"])
@login_required
def admin_new_user():
    with unit_of_work():
        _admin()
    form = NewUserForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user, uri = accounts.add_user(
                    current_actor(), form.email.data, form.role.data, form.password.data,
                    name=form.name.data.strip(),
                )
                if uri is not None:
                    return _handover(user, uri, 201,
                                     f"{user.name}'s admin account is created.")
                user_id, name = user.id, user.name
        except (ValidationError, ConflictError) as error:
            if isinstance(error, ConflictError):
                form.email.errors = [error.detail]
            else:
                show_refusal(form, error)
            status = 422
        else:
            flash(f"{name}'s account is created. They can sign in with the password you set.")
            return redirect(url_for("triage.admin_user", user_id=user_id))
    elif form.is_submitted():
        status = 422
    return render_template("triage/admin_user_new.html", form=form), status


def _user_page(user_id: uuid.UUID, status: int = 200, role_form: RoleForm | None = None,
               problem: str | None = None):
    with unit_of_work():
        actor = _admin()
        user = accounts.get_user_by_id(actor, user_id)
        role_form = role_form or RoleForm(formdata=None, role=user.role)
        if problem:
            role_form.form_errors.append(problem)
        page = render_template(
            "triage/admin_user.html", user=user, role_form=role_form, form=EmptyForm(),
            totp=has_totp(user), own=user.id == actor.id,
            live_tokens=sum(1 for token in user.tokens if token.revoked_at is None),
            role_labels=ROLE_LABELS,
        )
    return page, status


@blueprint.route("/admin/users/<uuid:user_id>")
@login_required
def admin_user(user_id: uuid.UUID):
    return _user_page(user_id)


@blueprint.route("/admin/users/<uuid:user_id>/role", methods=["POST"])
@login_required
def admin_user_role(user_id: uuid.UUID):
    form = RoleForm()
    if not form.validate():
        return _user_page(user_id, 422, role_form=form)
    try:
        with unit_of_work():
            actor = current_actor()
            user = accounts.get_user_by_id(actor, user_id)
            uri = accounts.change_role(actor, user, form.role.data)
            if uri is not None:
                return _handover(user, uri, 200, f"{user.name} is now an admin.")
            name, role, own = user.name, user.role, user.id == actor.id
    except (ValidationError, ConflictError) as error:
        return _user_page(user_id, 409 if isinstance(error, ConflictError) else 422,
                          role_form=form, problem=error.detail)
    flash(f"{name} is now {'an' if role[0] in 'aeiou' else 'a'} {role}.")
    if own and role != Role.ADMIN.value:
        # They are no longer an admin: the admin pages would refuse them now.
        return redirect(url_for("triage.queue"))
    return redirect(url_for("triage.admin_user", user_id=user_id))


def _user_action(user_id: uuid.UUID, action, message: str):
    """Run `action(actor, user)`; flash `message` (formatted with the user and the result) or
    the service's refusal, then back to the user's page."""
    try:
        with unit_of_work():
            actor = current_actor()
            user = accounts.get_user_by_id(actor, user_id)
            result = action(actor, user)
            text = message.format(name=user.name, result=result)
    except ConflictError as error:
        return _user_page(user_id, 409, problem=error.detail)
    flash(text)
    return redirect(url_for("triage.admin_user", user_id=user_id))


@blueprint.route("/admin/users/<uuid:user_id>/deactivate", methods=["POST"])
@login_required
def admin_user_deactivate(user_id: uuid.UUID):
    return _user_action(user_id, accounts.deactivate_user,
                        "{name}'s account is deactivated and their API tokens are revoked.")


@blueprint.route("/admin/users/<uuid:user_id>/reactivate", methods=["POST"])
@login_required
def admin_user_reactivate(user_id: uuid.UUID):
    return _user_action(user_id, accounts.reactivate_user,
                        "{name} can sign in again. Their old API tokens stay revoked.")


@blueprint.route("/admin/users/<uuid:user_id>/revoke-tokens", methods=["POST"])
@login_required
def admin_user_revoke_tokens(user_id: uuid.UUID):
    return _user_action(user_id, accounts.revoke_tokens,
                        "{name}'s API tokens are revoked ({result}).")


@blueprint.route("/admin/users/<uuid:user_id>/totp-reset", methods=["POST"])
@login_required
def admin_user_totp_reset(user_id: uuid.UUID):
    try:
        with unit_of_work():
            actor = current_actor()
            user = accounts.get_user_by_id(actor, user_id)
            uri = accounts.reset_totp(actor, user)
            if uri is not None:
                return _handover(user, uri, 200,
                                 f"{user.name}'s old authenticator app no longer works.")
            name = user.name
    except ConflictError as error:
        return _user_page(user_id, 409, problem=error.detail)
    flash(f"{name}'s authenticator app is removed: they sign in with their password and can "
          "set up a new app on their account page.")
    return redirect(url_for("triage.admin_user", user_id=user_id))


# --------------------------------------------------------------------------------------------
# Areas


@blueprint.route("/admin/areas", methods=["GET", "POST"])
@login_required
def admin_areas():
    """The imported areas, and a GeoJSON upload that imports all of its features or none."""
    form = AreasUploadForm()
    status, refused = 200, None
    if form.validate_on_submit():
        try:
            with unit_of_work():
                result = areas.import_areas(
                    current_actor(), form.file.data.stream,
                    code_property=form.code_property.data.strip(),
                    name_property=form.name_property.data.strip(),
                    repair=form.repair.data,
                )
        except ValidationError as error:
            refused = {"detail": error.detail,
                       "features": (error.errors or {}).get("features", [])}
            form.file.errors = ["The file was refused: see the reasons below, fix the file and "
                                "choose it again."]
            status = 422
        else:
            parts = [f"{len(result.created)} new", f"{len(result.replaced)} replaced"]
            if result.repaired:
                parts.append(f"repaired with ST_MakeValid: {', '.join(result.repaired)}")
            flash(f"Imported {len(result.created) + len(result.replaced)} areas "
                  f"({'; '.join(parts)}) from EPSG:{result.source_srid}.")
            return redirect(url_for("triage.admin_areas"))
    elif form.is_submitted():
        status = 422
    with unit_of_work():
        rows = areas.list_areas(_admin())
        page = render_template("triage/admin_areas.html", areas=rows, form=form,
                               refused=refused, tile_url=settings().MAP_TILE_URL)
    return page, status


# --------------------------------------------------------------------------------------------
# Taxonomy


def _taxonomy_page(form: TagCodeForm | None = None, status: int = 200):
    with unit_of_work():
        dimensions = taxonomy.list_taxonomy(_admin())
        page = render_template("triage/admin_taxonomy.html", dimensions=dimensions,
                               form=form or TagCodeForm(formdata=None))
    return page, status


@blueprint.route("/admin/taxonomy")
@login_required
def admin_taxonomy():
    return _taxonomy_page()


@blueprint.route("/admin/taxonomy/add", methods=["POST"])
@login_required
def admin_taxonomy_add():
    form = TagCodeForm()
    if not form.validate():
        return _taxonomy_page(form, 422)
    try:
        with unit_of_work():
            row = taxonomy.add_tag_code(current_actor(), form.dimension.data,
                                        form.code.data.strip(), form.label.data)
            tag, label = row.tag, row.label
    except (ValidationError, ConflictError) as error:
        if isinstance(error, ConflictError):
            form.code.errors = [error.detail]
        else:
            show_refusal(form, error)
        return _taxonomy_page(form, 422)
    flash(f"Added {tag} ({label}).")
    return redirect(url_for("triage.admin_taxonomy") + f"#tag-{tag.replace(':', '-')}")


def _tag_page(dimension: str, code: str, form: RelabelForm | None = None, status: int = 200):
    with unit_of_work():
        row = taxonomy.get_tag_code(_admin(), dimension, code)
        page = render_template("triage/admin_tag.html", tag=row,
                               form=form or RelabelForm(formdata=None, label=row.label),
                               retire_form=EmptyForm())
    return page, status


@blueprint.route("/admin/taxonomy/<dimension>/<code>")
@login_required
def admin_tag(dimension: str, code: str):
    return _tag_page(dimension, code)


@blueprint.route("/admin/taxonomy/<dimension>/<code>/relabel", methods=["POST"])
@login_required
def admin_tag_relabel(dimension: str, code: str):
    form = RelabelForm()
    if not form.validate():
        return _tag_page(dimension, code, form, 422)
    try:
        with unit_of_work():
            row = taxonomy.relabel_tag_code(current_actor(), dimension, code, form.label.data)
            tag, label = row.tag, row.label
    except ValidationError as error:
        show_refusal(form, error)
        return _tag_page(dimension, code, form, 422)
    flash(f"{tag} is now labelled {label}.")
    return redirect(url_for("triage.admin_tag", dimension=dimension, code=code))


@blueprint.route("/admin/taxonomy/<dimension>/<code>/retire", methods=["POST"])
@login_required
def admin_tag_retire(dimension: str, code: str):
    with unit_of_work():
        tag = taxonomy.retire_tag_code(current_actor(), dimension, code).tag
    flash(f"{tag} is retired: it stays on the reports that have it but cannot be added again.")
    return redirect(url_for("triage.admin_tag", dimension=dimension, code=code))


# --------------------------------------------------------------------------------------------
# Audit trail (supervisors too)


@blueprint.route("/admin/audit")
@login_required
def admin_audit():
    """Audit events, newest first, filtered by the query string; "older" pages by keyset."""
    form = AuditFilterForm(request.args)
    page, status = None, 200
    with unit_of_work():
        actor = require_role(current_actor(), Role.SUPERVISOR)
        if form.validate():
            try:
                page = audit.search_events(actor, **form.filters())
            except ValidationError as error:
                show_refusal(form, error)
                status = 422
        else:
            status = 422
        args = {key: value for key, value in request.args.items() if key != "cursor" and value}
        html = render_template("triage/admin_audit.html", form=form, page=page, args=args,
                               paged=bool(form.cursor.data))
    return html, status


# --------------------------------------------------------------------------------------------
# Authorities


@blueprint.route("/admin/authorities")
@login_required
def admin_authorities():
    with unit_of_work():
        _admin()
        rows = forwarding.list_authorities(current_actor())
        page = render_template("triage/admin_authorities.html", authorities=rows)
    return page


@blueprint.route("/admin/authorities/new", methods=["GET", "POST"])
@login_required
def admin_new_authority():
    with unit_of_work():
        _admin()
    form = AuthorityForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                row = forwarding.create_authority(current_actor(), form.fields())
                name = row.name
        except ValidationError as error:
            show_refusal(form, error)
            status = 422
        else:
            flash(f"{name} is added.")
            return redirect(url_for("triage.admin_authorities"))
    elif form.is_submitted():
        status = 422
    return render_template("triage/admin_authority.html", form=form, authority=None), status


@blueprint.route("/admin/authorities/<uuid:authority_id>", methods=["GET", "POST"])
@login_required
def admin_authority(authority_id: uuid.UUID):
    with unit_of_work():
        _admin()
        row = forwarding.get_authority(authority_id)
        if request.method == "POST":
            form = AuthorityForm()
        else:
            form = AuthorityForm(
                name=row.name, emails="\n".join(row.emails), area_codes=" ".join(row.area_codes),
                exploitation_types=" ".join(row.exploitation_types),
                pgp_public_key=row.pgp_public_key or "", encrypted_only=row.encrypted_only,
                active=row.active,
            )
        authority = {"id": row.id, "name": row.name, "fingerprint": row.pgp_fingerprint,
                     "expires_at": row.pgp_expires_at}
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                row = forwarding.update_authority(current_actor(), authority_id, form.fields())
                name = row.name
        except ValidationError as error:
            show_refusal(form, error)
            status = 422
        else:
            flash(f"{name} is saved.")
            return redirect(url_for("triage.admin_authorities"))
    elif form.is_submitted():
        status = 422
    return render_template("triage/admin_authority.html", form=form,
                           authority=authority), status
