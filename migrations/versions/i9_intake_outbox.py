"""intake in one statement: references from the database, NOTIFY for the dispatcher

Revision ID: i9_intake
Revises: 0001
Create Date: 2026-11-28 21:05:00

The report reference (R-2026-000123) is made by a column default, so that a new report is
one INSERT, and a trigger sends NOTIFY on every new report: it is delivered when the INSERT's
transaction commits (never before, never for a rollback), and wakes the dispatcher that queues
the triage jobs (workers/dispatcher.py).
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "i9_intake"
down_revision = "i6a_accounts_taxonomy"
branch_labels = None
depends_on = None


def upgrade():
    # Six digits at least, more once the sequence passes 999999 (lpad alone would truncate).
    op.execute(
        """
        CREATE FUNCTION report_reference() RETURNS text LANGUAGE sql VOLATILE AS $$
            SELECT 'R-' || to_char(now() AT TIME ZONE 'UTC', 'YYYY') || '-'
                   || CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END
            FROM nextval('report_reference_seq') AS n
        $$
        """
    )
    op.execute("ALTER TABLE reports ALTER COLUMN reference SET DEFAULT report_reference()")
    op.execute(
        """
        CREATE FUNCTION notify_report_received() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('report_received', NEW.id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER reports_notify_received AFTER INSERT ON reports "
        "FOR EACH ROW EXECUTE FUNCTION notify_report_received()"
    )


def downgrade():
    op.execute("DROP TRIGGER reports_notify_received ON reports")
    op.execute("DROP FUNCTION notify_report_received()")
    op.execute("ALTER TABLE reports ALTER COLUMN reference DROP DEFAULT")
    op.execute("DROP FUNCTION report_reference()")
