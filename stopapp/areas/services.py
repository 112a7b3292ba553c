"""Areas (boroughs, police force areas...): importing their boundaries, and which cover a point.

An import is all or nothing: every feature is loaded into a temporary table in the caller's
transaction, checked there by PostGIS (polygons only, ST_IsValid with its reason), repaired with
ST_MakeValid only when asked, transformed to WGS 84 and only then written over the areas table.
Nothing is written while any feature is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from sqlalchemy import func, select, text
from sqlalchemy.orm import defer

from stopapp.accounts.models import Role, User
from stopapp.accounts.permissions import require_role, require_staff
from stopapp.areas.models import Area
from stopapp.audit.services import record
from stopapp.constants import SRID
from stopapp.errors import ValidationError
from stopapp.extensions import db

POLYGONAL = ("Polygon", "MultiPolygon")
# Features sent to PostgreSQL per batch; the import reports its progress after each.
PROGRESS_EVERY = 500

# Legacy (GeoJSON 2008) `crs` names: "EPSG:27700", "urn:ogc:def:crs:EPSG::27700",
# "urn:ogc:def:crs:EPSG:6.6:27700", "http://www.opengis.net/def/crs/EPSG/0/27700".
_EPSG_NAME = re.compile(r"(?:^EPSG:{1,2}|:EPSG:[\d.]*:|/EPSG/\d+/)(\d+)$", re.IGNORECASE)
_CRS84_NAMES = {"urn:ogc:def:crs:ogc:1.3:crs84", "urn:ogc:def:crs:ogc::crs84", "crs84",
                "http://www.opengis.net/def/crs/ogc/1.3/crs84"}


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    replaced: list[str]
    repaired: list[str]
    source_srid: int


def _refused(message: str, problems: list[str]) -> ValidationError:
    return ValidationError(message, errors={"features": problems})


def _source_srid(collection: dict) -> int:
    """The SRID a legacy `crs` member names; RFC 7946 files (no `crs`) are WGS 84 lon/lat."""
    crs = collection.get("crs")
    if crs is None:
        return SRID
    name = str((crs.get("properties") or {}).get("name", "")) if isinstance(crs, dict) else ""
    if name.lower() in _CRS84_NAMES:
        return SRID
    match = _EPSG_NAME.search(name)
    if match is None:
        raise _refused("The file's crs is not one this import understands.",
                       [f"crs: {name or 'unnamed'} (name an EPSG code, e.g. EPSG:27700)"])
    srid = int(match.group(1))
    known = db.session.scalar(text("SELECT count(*) FROM spatial_ref_sys WHERE srid = :srid"),
                              {"srid": srid})
    if not known:
        raise _refused("The file's crs names an unknown EPSG code.", [f"crs: EPSG:{srid}"])
    return srid


def _coordinates_ok(value, depth: int) -> bool:
    """Nested lists `depth` deep ending in positions of 2 or 3 numbers."""
    if not isinstance(value, list):
        return False
    if depth == 0:
        return 2 <= len(value) <= 3 and all(
            isinstance(n, int | float) and not isinstance(n, bool) for n in value
        )
    return all(_coordinates_ok(item, depth - 1) for item in value)


def _features(document: dict) -> list:
    if document.get("type") == "FeatureCollection" and isinstance(
        document.get("features"), list
    ):
        return document["features"]
    if document.get("type") == "Feature":
        return [document]
    raise _refused("The file is not a GeoJSON FeatureCollection.", ["type: FeatureCollection"])


def _read_features(
    document: dict, code_property: str, name_property: str, srid: int
) -> list[dict]:
    """Rows (n, code, name, geometry JSON) for the staging table; refuses the whole file if
    any feature is not a polygon, lacks its code or name, or repeats a code."""
    rows, problems, seen = [], [], {}
    for n, feature in enumerate(_features(document), start=1):
        feature = feature if isinstance(feature, dict) else {}
        properties = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        code, name = properties.get(code_property), properties.get(name_property)
        label = f"feature {n}" + (f" ({code})" if code not in (None, "") else "")
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if kind not in POLYGONAL:
            problems.append(f"{label}: {kind or 'no geometry'} is not a Polygon or MultiPolygon")
            continue
        if code in (None, "") or name in (None, ""):
            problems.append(f"{label}: missing property {code_property!r} or {name_property!r}")
            continue
        if not _coordinates_ok(geometry.get("coordinates"), 2 if kind == "Polygon" else 3):
            problems.append(f"{label}: malformed coordinates")
            continue
        code = str(code)
        if code in seen:
            problems.append(f"{label}: code {code} repeats feature {seen[code]}")
            continue
        seen[code] = n
        rows.append({"n": n, "code": code, "name": str(name),
                     "geojson": json.dumps(geometry), "srid": srid})
    if problems:
        raise _refused("Only Polygon and MultiPolygon features with a code and a name can be "
                       "imported; nothing was imported.", problems)
    if not rows:
        raise _refused("The file has no features; nothing was imported.", ["features: empty"])
    return rows


def import_areas(
    actor: User | None,
    source: IO[bytes] | IO[str],
    *,
    code_property: str,
    name_property: str,
    repair: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import (or re-import) areas from a GeoJSON file, all or nothing.

    `actor` None is the command line, run by an operator on the server; a user must be an
    admin. A code imported again has its name and geometry replaced. `progress(done, total)` is
    called every PROGRESS_EVERY features and at the end.

    Raises ValidationError listing every refused feature (not polygonal, no code or name, a
    repeated code, malformed coordinates, or invalid by ST_IsValid with PostGIS's reason when
    `repair` is off) and for an unreadable file or `crs`; ForbiddenError for a non-admin.
    """
    if actor is not None:
        require_role(actor, Role.ADMIN)
    try:
        document = json.load(source)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refused("The file is not JSON.", [f"json: {exc}"]) from exc
    if not isinstance(document, dict):
        raise _refused("The file is not a GeoJSON FeatureCollection.", ["type: FeatureCollection"])
    source_srid = _source_srid(document)
    rows = _read_features(document, code_property, name_property, source_srid)
    session = db.session
    session.execute(text(
        "CREATE TEMP TABLE area_import (n int PRIMARY KEY, code text, name text, geom geometry)"
        " ON COMMIT DROP"
    ))
    insert = text(
        "INSERT INTO area_import (n, code, name, geom) "
        "VALUES (:n, :code, :name, ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON(:geojson), :srid)))"
    )
    for start in range(0, len(rows), PROGRESS_EVERY):
        session.execute(insert, rows[start:start + PROGRESS_EVERY])
        if progress is not None:
            progress(min(start + PROGRESS_EVERY, len(rows)), len(rows))

    invalid = session.execute(text(
        "SELECT n, code, ST_IsValidReason(geom) AS reason FROM area_import "
        "WHERE NOT ST_IsValid(geom) ORDER BY n"
    )).all()
    if invalid and not repair:
        raise _refused(
            "Some features are not valid polygons; nothing was imported (--repair applies "
            "ST_MakeValid).",
            [f"feature {row.n} ({row.code}): {row.reason}" for row in invalid],
        )
    if invalid:
        # Keep only the polygonal parts of the repair (a bow-tie becomes two triangles; a
        # spike collapses to a line, which is dropped).
        session.execute(text(
            "UPDATE area_import SET geom = ST_CollectionExtract(ST_MakeValid(geom), 3) "
            "WHERE NOT ST_IsValid(geom)"
        ))
        empty = session.execute(text(
            "SELECT n, code FROM area_import WHERE ST_IsEmpty(geom) ORDER BY n"
        )).all()
        if empty:
            raise _refused("Some features have no area left once repaired; nothing was imported.",
                           [f"feature {row.n} ({row.code}): no polygon left" for row in empty])

    existing = set(session.scalars(
        select(Area.code).where(Area.code.in_([row["code"] for row in rows]))
    ))
    session.execute(text(
        "INSERT INTO areas (code, name, geom, imported_at) "
        "SELECT code, name, ST_Multi(ST_Transform(geom, :srid)), now() FROM area_import "
        "ORDER BY code "
        "ON CONFLICT (code) DO UPDATE SET name = excluded.name, geom = excluded.geom, "
        "imported_at = excluded.imported_at"
    ), {"srid": SRID})
    session.execute(text("DROP TABLE area_import"))
    codes = [row["code"] for row in rows]
    result = ImportResult(
        created=[c for c in codes if c not in existing],
        replaced=[c for c in codes if c in existing],
        repaired=[row.code for row in invalid],
        source_srid=source_srid,
    )
    record(actor, "area.import", detail={
        "created": result.created, "replaced": result.replaced, "repaired": result.repaired,
        "source_srid": source_srid,
    })
    session.flush()
    return result


def list_areas(actor: User) -> list[Area]:
    """Every imported area, by name, without its shape (deferred: a borough's polygon is
    thousands of points, and every caller lists codes and names). Any member of staff."""
    require_staff(actor)
    query = select(Area).options(defer(Area.geom)).order_by(Area.name, Area.code)
    return list(db.session.scalars(query))


def area_codes_covering(point) -> list[str]:
    """Codes of every area whose polygon covers `point` (a geography or geometry expression,
    WGS 84), by code. A point on a shared border is in both areas. Uses the GiST index."""
    location = func.geometry(point)
    return list(db.session.scalars(
        select(Area.code).where(func.ST_Covers(Area.geom, location)).order_by(Area.code)
    ))


# Outlines for the maps: about 50 m of detail (in degrees at London's latitude), which keeps a
# borough to a few hundred points and is finer than a queue map at city zoom can show.
OUTLINE_TOLERANCE_DEG = 0.0005
OUTLINE_DECIMALS = 5
MAX_OUTLINE_CODES = 50


def area_outlines(
    actor: User,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    codes: list[str] | None = None,
) -> dict:
    """The areas' simplified outlines as a GeoJSON FeatureCollection (WGS 84), each feature with
    its `code` and `name`: every area, those meeting `bbox` (west, south, east, north), or
    those with one of `codes` (unknown codes are left out), by name. Any member of staff.

    Simplified with ST_SimplifyPreserveTopology so that no outline crosses itself or vanishes.
    Raises ValidationError for more than MAX_OUTLINE_CODES codes.
    """
    require_staff(actor)
    query = select(
        Area.code, Area.name,
        func.ST_AsGeoJSON(
            func.ST_SimplifyPreserveTopology(Area.geom, OUTLINE_TOLERANCE_DEG), OUTLINE_DECIMALS
        ).label("geometry"),
    ).order_by(Area.name, Area.code)
    if codes is not None:
        if len(codes) > MAX_OUTLINE_CODES:
            raise ValidationError(f"At most {MAX_OUTLINE_CODES} areas at once.",
                                  errors={"code": ["Too many."]})
        query = query.where(Area.code.in_(codes))
    if bbox is not None:
        query = query.where(Area.geom.op("&&")(func.ST_MakeEnvelope(*bbox, SRID)))
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": code, "name": name},
             "geometry": json.loads(geometry)}
            for code, name, geometry in db.session.execute(query)
        ],
    }
