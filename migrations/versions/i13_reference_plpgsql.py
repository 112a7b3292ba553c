"""report_reference() in PL/pgSQL: the INSERT no longer plans the function's body each time

Revision ID: i13_reference_plpgsql
Revises: i12_queue_index
Create Date: 2026-11-29 03:20:00

The column default of reports.reference was a LANGUAGE sql function that cannot be inlined
(it draws from a sequence), so every INSERT parsed and planned its body again. A PL/pgSQL
function keeps its plan for the life of the connection. Same text, same sequence, same
volatility: only the language changes.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "i13_reference_plpgsql"
down_revision = "i12_queue_index"
branch_labels = None
depends_on = None


def upgrade():
    # Six digits at least, more once the sequence passes 999999 (lpad alone would truncate).
    op.execute(
        """
        CREATE OR REPLACE FUNCTION report_reference() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            n bigint := nextval('report_reference_seq');
        BEGIN
            RETURN 'R-' || to_char(now() AT TIME ZONE 'UTC', 'YYYY') || '-'
                   || CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END;
        END
        $$
        """
    )


def downgrade():
    op.execute(
        """
        CREATE OR REPLACE FUNCTION report_reference() RETURNS text LANGUAGE sql VOLATILE AS $$
            SELECT 'R-' || to_char(now() AT TIME ZONE 'UTC', 'YYYY') || '-'
                   || CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END
            FROM nextval('report_reference_seq') AS n
        $$
        """
    )
