"""seed the analysts' tag vocabulary; index the audit trail by time

Revision ID: i6a_accounts_taxonomy
Revises: 0002
Create Date: 2026-11-28 21:30:00.000000

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stopapp.review.taxonomy_data import seed_rows

# revision identifiers, used by Alembic.
revision = 'i6a_accounts_taxonomy'
down_revision = 'i8_forwarding'
branch_labels = None
depends_on = None

tag_codes = sa.table(
    'tag_codes',
    sa.column('dimension', sa.String),
    sa.column('code', sa.String),
    sa.column('label', sa.Text),
    sa.column('crosswalk', postgresql.JSONB),
    sa.column('position', sa.Integer),
)


def upgrade():
    op.bulk_insert(tag_codes, seed_rows())
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_at', ['at'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_at')
    # Codes admins added later go too: the table is empty before this revision.
    op.execute(tag_codes.delete())
