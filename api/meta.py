"""What the app needs to know to build its forms: types, labels, limits."""

from __future__ import annotations

import hashlib

from flask import json, request
from flask_restx import Namespace, Resource

from api.openapi import ETAG, IF_NONE_MATCH, Reply, operation
from api.ratelimit import limiter, setting
from api.schemas import MetaSchema
from stopapp.db import unit_of_work
from stopapp.extensions import settings
from stopapp.media.imaging import ACCEPTED_FORMATS
from stopapp.reports import services
from stopapp.reports.taxonomy import LANGUAGES

ns = Namespace("meta", path="/meta", description="Taxonomy, labels and limits")
MEDIA_TYPES = {"jpeg": ["image/jpeg"], "png": ["image/png"], "webp": ["image/webp"],
               "heif": ["image/heic", "image/heif"]}


@ns.route("")
class Meta(Resource):
    decorators = [limiter.limit(setting("RATELIMIT_READS"))]

    @operation(
        "getMeta",
        headers=[IF_NONE_MATCH],
        responses={200: Reply(MetaSchema, "Cacheable for an hour", headers=[ETAG]),
                   304: Reply(None, "Not modified since the ETag given", headers=[ETAG])},
    )
    def get(self):
        """Exploitation types with labels in every supported language, photo limits, version."""
        config = settings()
        with unit_of_work():
            taxonomy = services.list_exploitation_types()
            types = [{"code": t.code, "labels": t.labels} for t in taxonomy]
        body = MetaSchema().dump(
            {
                "api_version": "1",
                "languages": list(LANGUAGES),
                "exploitation_types": types,
                "photo_limits": {
                    "max_bytes": config.MAX_PHOTO_BYTES,
                    "max_photos_per_report": config.MAX_PHOTOS_PER_REPORT,
                    "max_pixels": config.MAX_PHOTO_PIXELS,
                    "accepted_types": sorted(
                        t for fmt in ACCEPTED_FORMATS for t in MEDIA_TYPES[fmt]
                    ),
                },
            }
        )
        etag = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
        headers = {"Cache-Control": "public, max-age=3600", "ETag": f'"{etag}"'}
        if request.if_none_match.contains(etag):
            return None, 304, headers
        return body, 200, headers
