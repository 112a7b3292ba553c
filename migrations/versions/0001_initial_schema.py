"""reports, messages, photos, exploitation types

Revision ID: 0001
Revises:
Create Date: 2026-11-28 13:47:17.821150

"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateSequence, DropSequence, Sequence

from stopapp.reports.taxonomy import BUILTIN_TYPES

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute(CreateSequence(Sequence("report_reference_seq")))
    types = op.create_table(
        "exploitation_types",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("labels", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_geospatial_table(
        "reports",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("idempotency_key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("receipt_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("exploitation_types", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column(
            "location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
            ),
            nullable=True,
        ),
        sa.Column("location_accuracy_m", sa.Float(), nullable=True),
        sa.Column("location_source", sa.String(length=8), nullable=True),
        sa.Column("place", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_precision", sa.String(length=8), nullable=False),
        sa.Column("ongoing", sa.Boolean(), nullable=False),
        sa.Column("people", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("vehicles", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("app_platform", sa.String(length=16), nullable=True),
        sa.Column("app_version", sa.String(length=32), nullable=True),
        sa.Column("contact_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('received','new','in_review','actioned','closed','dismissed','duplicate')",
            name="known_state",
        ),
        sa.CheckConstraint("location IS NOT NULL OR place IS NOT NULL", name="location_or_place"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key_hash"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_reports_location",
            ["location"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index("ix_reports_state_created_at", ["state", "created_at"], unique=False)

    op.create_geospatial_table(
        "photos",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("report_id", sa.UUID(), nullable=False),
        sa.Column("idempotency_key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("upload_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("upload_bytes", sa.Integer(), nullable=False),
        sa.Column("detected_format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reject_reason", sa.String(length=32), nullable=True),
        sa.Column("quarantine_key", sa.String(length=200), nullable=True),
        sa.Column("display_key", sa.String(length=200), nullable=True),
        sa.Column("thumb_key", sa.String(length=200), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column(
            "gps_location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
            ),
            nullable=True,
        ),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("captured_at_local", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('processing','ready','rejected')", name="known_status"),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "report_id", "idempotency_key_hash", name="uq_photos_report_idempotency"
        ),
    )
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_photos_report_id"), ["report_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_photos_status"), ["status"], unique=False)

    op.create_table(
        "report_messages",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("report_id", sa.UUID(), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("sender IN ('reporter','analyst')", name="known_sender"),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_messages_report_id"), ["report_id"], unique=False
        )

    op.bulk_insert(
        types,
        [
            {"code": code, "labels": labels, "position": position, "active": True}
            for position, (code, labels) in enumerate(BUILTIN_TYPES.items())
        ],
    )


def downgrade():
    with op.batch_alter_table("report_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_messages_report_id"))

    op.drop_table("report_messages")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photos_status"))
        batch_op.drop_index(batch_op.f("ix_photos_report_id"))

    op.drop_geospatial_table("photos")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_state_created_at")
        batch_op.drop_geospatial_index(
            "idx_reports_location", postgresql_using="gist", column_name="location"
        )

    op.drop_geospatial_table("reports")
    op.drop_table("exploitation_types")
    op.execute(DropSequence(Sequence("report_reference_seq")))
