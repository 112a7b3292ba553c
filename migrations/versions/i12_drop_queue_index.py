"""drop ix_reports_queue: no query uses it, and every new report wrote it

Revision ID: i12_queue_index
Revises: i6c_queue
Create Date: 2026-11-29 03:40:00

ix_reports_queue (state, queue_priority DESC, created_at, id) is in no plan of the queue, the
triage job or the reconciler: the queue sorts by the negated priority, which
ix_reports_state_priority and ix_reports_open_priority serve (the planner does not read
-queue_priority ASC from queue_priority DESC). Every INSERT and every non-HOT UPDATE of a report
still wrote it. tests/test_report_indexes.py pins the plans that use the other two.

Not dropped CONCURRENTLY, like the other index migrations here.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'i12_queue_index'
down_revision = 'i6c_queue'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_reports_queue', table_name='reports')


def downgrade():
    op.create_index('ix_reports_queue', 'reports',
                    ['state', sa.text('queue_priority DESC'), 'created_at', 'id'])
