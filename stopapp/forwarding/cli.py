"""`flask authorities ...`: register authorities, and the demo ones of `make run`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import click
import gnupg
from flask.cli import AppGroup
from sqlalchemy import func, select, text

from stopapp.areas.models import Area
from stopapp.db import unit_of_work
from stopapp.errors import ValidationError
from stopapp.extensions import db
from stopapp.forwarding import services
from stopapp.forwarding.models import Authority

ROOT = Path(__file__).resolve().parents[2]
# The demo areas (see tests/data/SOURCES.md); codes and names are ONS's LAD13CD and LAD13NM.
DEMO_AREAS_FILE = ROOT / "tests" / "data" / "geo" / "london_hf_kc_westminster.geojson"
DEMO_GNUPG_HOME = ROOT / "var" / "demo-gnupg"
DEMO_AUTHORITIES = [
    {"name": "Hammersmith and Fulham Police (demo)", "emails": ["police-hf@example.org"],
     "area_codes": ["E09000013"], "exploitation_types": []},
    {"name": "Kensington and Chelsea Labour Inspectorate (demo)",
     "emails": ["inspectors-kc@example.org", "duty-kc@example.org"],
     "area_codes": ["E09000020"], "exploitation_types": ["labour", "domestic_servitude"]},
    {"name": "Westminster Safeguarding (demo, PGP)",
     "emails": ["safeguarding-westminster@example.org"], "area_codes": ["E09000033"],
     "exploitation_types": [], "encrypted_only": True, "pgp": True},
]

authorities_cli = AppGroup("authorities", help="Authorities that receive forwarded reports.")


def _register(fields: dict) -> Authority:
    try:
        return services.register_authority(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
        raise click.ClickException(f"{exc.detail} {problems}") from None


@authorities_cli.command("add")
@click.argument("name")
@click.option("--email", "emails", multiple=True, required=True, help="Repeat for more.")
@click.option("--area", "area_codes", multiple=True, required=True, help="An imported area code.")
@click.option("--type", "types", multiple=True, help="Exploitation types handled (none: all).")
@click.option("--pgp-key", type=click.File("r"), help="File with the ASCII-armoured public key.")
@click.option("--encrypted-only", is_flag=True, help="Never send it anything unencrypted.")
def add(name, emails, area_codes, types, pgp_key, encrypted_only) -> None:
    """Register an authority."""
    with unit_of_work():
        authority = _register({
            "name": name, "emails": list(emails), "area_codes": list(area_codes),
            "exploitation_types": list(types),
            "pgp_public_key": pgp_key.read() if pgp_key else None,
            "encrypted_only": encrypted_only,
        })
        click.echo(f"authority {authority.id} {authority.name}"
                   + (f" key {authority.pgp_fingerprint}" if authority.pgp_fingerprint else ""))


def _demo_public_key() -> str:
    """A demo key pair made once with gpg under var/demo-gnupg (its private half stays there,
    for reading the demo's encrypted mail: gpg --homedir var/demo-gnupg -d)."""
    os.makedirs(DEMO_GNUPG_HOME, mode=0o700, exist_ok=True)
    gpg = gnupg.GPG(gnupghome=str(DEMO_GNUPG_HOME))
    keys = gpg.list_keys(secret=True)
    if keys:
        fingerprint = keys[0]["fingerprint"]
    else:
        fingerprint = gpg.gen_key(gpg.gen_key_input(
            key_type="EDDSA", key_curve="ed25519", key_usage="sign", subkey_type="ECDH",
            subkey_curve="cv25519", subkey_usage="encrypt", expire_date="2y",
            name_real="Westminster Safeguarding (demo)",
            name_email="safeguarding-westminster@example.org", no_protection=True,
        )).fingerprint
        # gen_key started an agent for this keyring; it is not needed any more.
        subprocess.run(["gpgconf", "--homedir", str(DEMO_GNUPG_HOME), "--kill", "gpg-agent"],
                       check=False, capture_output=True)
    return gpg.export_keys(fingerprint)


def _import_demo_areas_if_missing() -> None:
    """Stop-gap until `flask areas import` seeds the areas: the three demo boroughs."""
    with unit_of_work():
        if db.session.scalar(select(func.count()).select_from(Area)):
            return
        for feature in json.loads(DEMO_AREAS_FILE.read_text())["features"]:
            db.session.execute(text(
                "INSERT INTO areas (code, name, geom) VALUES (:code, :name, "
                "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:geom), 4326)))"
            ), {"code": feature["properties"]["LAD13CD"], "name": feature["properties"]["LAD13NM"],
                "geom": json.dumps(feature["geometry"])})
        click.echo("imported the three demo areas")


@authorities_cli.command("seed-demo")
def seed_demo() -> None:
    """The demo authorities, one per London borough of the demo (idempotent)."""
    _import_demo_areas_if_missing()
    for spec in DEMO_AUTHORITIES:
        with unit_of_work():
            if db.session.scalar(select(Authority.id).where(Authority.name == spec["name"])):
                click.echo(f"demo authority {spec['name']}: already there")
                continue
            fields = {k: v for k, v in spec.items() if k != "pgp"}
            if spec.get("pgp"):
                fields["pgp_public_key"] = _demo_public_key()
            authority = _register(fields)
            click.echo(f"demo authority {authority.name}: {', '.join(authority.emails)}")
