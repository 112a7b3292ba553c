"""The OpenAPI document, Swagger UI, and GET /api/v1/meta."""

from __future__ import annotations

from api.schemas import ReportCreateSchema
from stopapp.reports.taxonomy import LANGUAGES

REQUIRED_TYPES = {"sexual", "labour", "domestic_servitude", "criminal", "child",
                  "organ_harvesting", "forced_marriage", "other", "unknown"}


def test_openapi_document_lists_every_public_endpoint(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"/reports", "/reports/{report_id}/status", "/reports/{report_id}/messages",
            "/reports/{report_id}/photos", "/meta"} <= set(spec["paths"])
    assert spec["servers"] == [{"url": "/api/v1"}]


def test_openapi_models_are_generated_from_the_marshmallow_schemas(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    report = schemas["ReportCreate"]
    assert set(report["properties"]) == set(ReportCreateSchema().fields)
    assert report["required"] == ["description"]
    assert report["additionalProperties"] is False
    assert report["properties"]["location"] == {"$ref": "#/components/schemas/Location"}
    assert schemas["Location"]["properties"]["lat"]["maximum"] == 90
    for name in ("Location", "People", "Vehicle", "Contact", "AppInfo", "ReportCreated",
                 "ReportStatus", "PhotoState", "Message", "Meta", "Problem"):
        assert name in schemas


def test_submission_documents_idempotency_header(client):
    post = client.get("/api/v1/openapi.json").get_json()["paths"]["/reports"]["post"]
    headers = {p["name"]: p for p in post["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["required"] is True
    assert headers["Idempotency-Key"]["schema"] == {"type": "string", "format": "uuid"}
    assert {"201", "400", "413", "415", "422", "429"} <= set(post["responses"])


def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "swagger" in html.lower()
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    # The assets flask-restx ships, on the OpenAPI 3.1 document.
    assert "/swaggerui/swagger-ui-bundle.js" in html
    assert '"/api/v1/openapi.json"' in html
    asset = client.get("/swaggerui/swagger-ui-bundle.js")
    asset.close()
    assert asset.status_code == 200


def test_meta_lists_required_types_with_labels_in_every_language(client):
    body = client.get("/api/v1/meta").get_json()
    assert body["api_version"] == "1"
    assert set(body["languages"]) >= {"en", "lt", "tl", "id", "es", "ar"}
    codes = {t["code"] for t in body["exploitation_types"]}
    assert REQUIRED_TYPES <= codes
    for entry in body["exploitation_types"]:
        assert set(entry["labels"]) >= set(LANGUAGES)
        assert all(label.strip() for label in entry["labels"].values())


def test_meta_states_the_photo_limits(client):
    limits = client.get("/api/v1/meta").get_json()["photo_limits"]
    assert limits["max_bytes"] == 20 * 1024 * 1024
    assert limits["max_photos_per_report"] == 10
    assert limits["max_pixels"] == 60_000_000
    assert {"image/jpeg", "image/png", "image/webp", "image/heic"} <= set(limits["accepted_types"])


def test_meta_is_cacheable_with_an_etag(client):
    first = client.get("/api/v1/meta")
    assert "max-age" in first.headers["Cache-Control"]
    again = client.get("/api/v1/meta", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
