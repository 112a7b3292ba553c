"""photos: a keyed upload digest for the retry window instead of the original's SHA-256 and size

The plain SHA-256 and the exact byte count of every original let whoever holds the photo prove
that it was sent, and find its report. They are dropped, with the detected format (also read
from the original, and used by nothing). Uploads are now recognised by an HMAC kept only for
the retry window; the plain digests cannot be turned into keyed ones (the originals are gone),
so the idempotency keys of existing photos are released too: a retry of an upload made before
this migration becomes a new photo.

Revision ID: i11_photo_digest
Revises: 0001
Create Date: 2026-11-28 21:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "i11_photo_digest"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("photos", sa.Column("upload_digest", sa.LargeBinary(length=32), nullable=True))
    op.alter_column(
        "photos", "idempotency_key_hash", existing_type=sa.LargeBinary(length=32), nullable=True
    )
    op.execute("UPDATE photos SET idempotency_key_hash = NULL")
    op.drop_column("photos", "upload_sha256")
    op.drop_column("photos", "upload_bytes")
    op.drop_column("photos", "detected_format")
    op.create_check_constraint(
        "retry_pair", "photos", "(idempotency_key_hash IS NULL) = (upload_digest IS NULL)"
    )
    op.create_index(
        "ix_photos_retry_until",
        "photos",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("upload_digest IS NOT NULL"),
    )
    # DROP COLUMN only hides the values: they stay in the table's files until each row is
    # rewritten. CLUSTER rewrites the whole table now (dropped columns become nulls) and,
    # unlike VACUUM FULL, runs inside the migration's transaction.
    op.execute("CLUSTER photos USING photos_pkey")
    op.execute("ALTER TABLE photos SET WITHOUT CLUSTER")


def downgrade():
    # The erased values cannot come back: placeholders that match no upload and no client key.
    op.drop_index(
        "ix_photos_retry_until",
        table_name="photos",
        postgresql_where=sa.text("upload_digest IS NOT NULL"),
    )
    op.drop_constraint("retry_pair", "photos", type_="check")
    op.add_column("photos", sa.Column("upload_sha256", sa.LargeBinary(length=32), nullable=True))
    op.add_column("photos", sa.Column("upload_bytes", sa.Integer(), nullable=True))
    op.add_column("photos", sa.Column("detected_format", sa.String(length=8), nullable=True))
    op.execute(
        "UPDATE photos SET upload_sha256 = decode(repeat('00', 32), 'hex'), upload_bytes = 0,"
        " detected_format = 'unknown',"
        " idempotency_key_hash = coalesce("
        "idempotency_key_hash, sha256(convert_to('released:' || id::text, 'UTF8')))"
    )
    for name, type_ in (
        ("upload_sha256", sa.LargeBinary(length=32)),
        ("upload_bytes", sa.Integer()),
        ("detected_format", sa.String(length=8)),
        ("idempotency_key_hash", sa.LargeBinary(length=32)),
    ):
        op.alter_column("photos", name, existing_type=type_, nullable=False)
    op.drop_column("photos", "upload_digest")
