"""the GIN indexes on tags and area_codes hold non-empty lists only: a new report writes neither

Revision ID: i14_partial_gin
Revises: i13_reference_plpgsql
Create Date: 2026-11-29 03:45:00

A new report (`received`) has neither tags nor areas (the triage job sets the areas with the
move to `new`), yet wrote both GIN indexes, and the triage job's UPDATE of its attempt count
wrote them again whenever it was not HOT (no room left on the row's page). The queue's filters
(`@>` a non-empty list) imply the predicates and say so (stopapp/review/queue.py), so the
planner still uses these indexes (tests/test_report_indexes.py); they are also smaller.

Not built CONCURRENTLY, like the other index migrations here: the table is locked while the two
GIN indexes are rebuilt.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'i14_partial_gin'
down_revision = 'i13_reference_plpgsql'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_reports_tags', table_name='reports')
    op.create_index('ix_reports_tags', 'reports', ['tags'], postgresql_using='gin',
                    postgresql_where=sa.text("tags <> '{}'"))
    op.drop_index('ix_reports_area_codes', table_name='reports')
    op.create_index('ix_reports_area_codes', 'reports', ['area_codes'], postgresql_using='gin',
                    postgresql_where=sa.text("area_codes <> '{}'"))


def downgrade():
    op.drop_index('ix_reports_area_codes', table_name='reports')
    op.create_index('ix_reports_area_codes', 'reports', ['area_codes'], postgresql_using='gin')
    op.drop_index('ix_reports_tags', table_name='reports')
    op.create_index('ix_reports_tags', 'reports', ['tags'], postgresql_using='gin')
