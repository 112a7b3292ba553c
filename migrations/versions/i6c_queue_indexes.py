"""indexes for the analysts' queue: keyset orders by priority and by age

Revision ID: i6c_queue
Revises: 0002
Create Date: 2026-11-28 21:40:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'i6c_queue'
down_revision = '0002'
branch_labels = None
depends_on = None

OPEN = "state IN ('new', 'in_review')"


def upgrade():
    # The priority order runs on the negated priority, so that one row comparison
    # (-queue_priority, created_at, id) > (...) seeks to the next page.
    op.create_index('ix_reports_open_priority', 'reports',
                    [sa.text('(- queue_priority)'), 'created_at', 'id'],
                    postgresql_where=sa.text(OPEN))
    op.create_index('ix_reports_open_created', 'reports', ['created_at', 'id'],
                    postgresql_where=sa.text(OPEN))
    op.create_index('ix_reports_state_priority', 'reports',
                    ['state', sa.text('(- queue_priority)'), 'created_at', 'id'])


def downgrade():
    op.drop_index('ix_reports_state_priority', table_name='reports')
    op.drop_index('ix_reports_open_created', table_name='reports')
    op.drop_index('ix_reports_open_priority', table_name='reports')
