"""indexes for the analysts' queue: keyset orders by priority and by age, bbox

Revision ID: i6c_queue
Revises: 0002
Create Date: 2026-11-28 21:40:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'i6c_queue'
down_revision = 'i9_intake'
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
    # Full text within the open queue: its predicate stands for the state filter, so the planner
    # does not AND in a bitmap of every open report.
    op.create_index('ix_reports_open_search_vector', 'reports', ['search_vector'],
                    postgresql_using='gin', postgresql_where=sa.text(OPEN))
    op.create_index('ix_reports_state_priority', 'reports',
                    ['state', sa.text('(- queue_priority)'), 'created_at', 'id'])
    # The bbox filter tests the planar view of the point: exact for a longitude/latitude
    # rectangle, and with statistics of its own that tell the planner how many rows a box holds.
    op.create_index('ix_reports_location_geometry', 'reports', [sa.text('geometry(location)')],
                    postgresql_using='gist')


def downgrade():
    op.drop_index('ix_reports_location_geometry', table_name='reports')
    op.drop_index('ix_reports_state_priority', table_name='reports')
    op.drop_index('ix_reports_open_search_vector', table_name='reports')
    op.drop_index('ix_reports_open_created', table_name='reports')
    op.drop_index('ix_reports_open_priority', table_name='reports')
