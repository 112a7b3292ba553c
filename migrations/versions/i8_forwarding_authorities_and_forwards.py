"""authorities and forwards

Revision ID: i8_forwarding
Revises: 0002
Create Date: 2026-11-28 21:09:30.675590

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'i8_forwarding'
down_revision = 'i11_photo_digest'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('authorities',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('emails', postgresql.ARRAY(sa.String(length=254)), nullable=False),
    sa.Column('area_codes', postgresql.ARRAY(sa.String(length=64)), nullable=False),
    sa.Column('exploitation_types', postgresql.ARRAY(sa.String(length=64)), server_default='{}', nullable=False),
    sa.Column('pgp_public_key', sa.Text(), nullable=True),
    sa.Column('pgp_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('pgp_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('encrypted_only', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('(pgp_public_key IS NULL) = (pgp_fingerprint IS NULL)', name='key_has_fingerprint'),
    sa.CheckConstraint('cardinality(emails) > 0', name='has_email'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('forwards',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('report_id', sa.UUID(), nullable=False),
    sa.Column('authority_id', sa.UUID(), nullable=False),
    sa.Column('created_by_id', sa.UUID(), nullable=True),
    sa.Column('include_contact', sa.Boolean(), nullable=False),
    sa.Column('location_precision_m', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sending_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('smtp_reply', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued','retrying','sent','failed')", name='known_status'),
    sa.CheckConstraint('location_precision_m IS NULL OR location_precision_m IN (100, 1000)', name='known_precision'),
    sa.ForeignKeyConstraint(['authority_id'], ['authorities.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('forwards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_forwards_authority_id'), ['authority_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_forwards_report_id'), ['report_id'], unique=False)
        batch_op.create_index('ix_forwards_status_updated_at', ['status', 'updated_at'], unique=False)



def downgrade():
    with op.batch_alter_table('forwards', schema=None) as batch_op:
        batch_op.drop_index('ix_forwards_status_updated_at')
        batch_op.drop_index(batch_op.f('ix_forwards_report_id'))
        batch_op.drop_index(batch_op.f('ix_forwards_authority_id'))

    op.drop_table('forwards')
    op.drop_table('authorities')
