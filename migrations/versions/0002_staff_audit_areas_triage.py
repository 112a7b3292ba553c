"""staff accounts, audit trail, areas, triage fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:00:56.526039

"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade():
    op.create_geospatial_table('areas',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('areas', schema=None) as batch_op:
        batch_op.create_geospatial_index('idx_areas_geom', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})

    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_id', sa.UUID(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('report_id', sa.UUID(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_action_id', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_actor_id_id', ['actor_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_report_id_id', ['report_id', 'id'], unique=False)

    op.create_table('tag_codes',
    sa.Column('dimension', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('crosswalk', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('dimension', 'code')
    )
    op.create_table('users',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('totp_secret_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('last_failed_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('analyst','supervisor','admin')", name='known_role'),
    sa.CheckConstraint('email = lower(email)', name='email_lower_case'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_api_tokens_active', ['user_id', 'revoked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('report_links',
    sa.Column('report_id', sa.UUID(), nullable=False),
    sa.Column('other_id', sa.UUID(), nullable=False),
    sa.Column('distance_m', sa.Float(), nullable=True),
    sa.Column('hours_apart', sa.Float(), nullable=False),
    sa.Column('text_similarity', sa.Float(), nullable=False),
    sa.Column('photo_match', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('report_id <> other_id', name='not_self'),
    sa.ForeignKeyConstraint(['other_id'], ['reports.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('report_id', 'other_id')
    )
    with op.batch_alter_table('report_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_links_other_id'), ['other_id'], unique=False)

    op.create_table('report_notes',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('report_id', sa.UUID(), nullable=False),
    sa.Column('author_id', sa.UUID(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_notes_report_id'), ['report_id'], unique=False)

    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phash', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('report_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author_id', sa.UUID(), nullable=True))
        batch_op.create_foreign_key('fk_report_messages_author_id_users', 'users', ['author_id'], ['id'])

    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority_reasons', postgresql.ARRAY(sa.String(length=64)), server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('priority_override', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_priority', sa.Integer(), sa.Computed('coalesce(priority_override, priority, 0)', persisted=True), nullable=False))
        batch_op.add_column(sa.Column('assignee_id', sa.UUID(), nullable=True))
        batch_op.add_column(sa.Column('tags', postgresql.ARRAY(sa.String(length=200)), server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('area_codes', postgresql.ARRAY(sa.String(length=64)), server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('triage_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('enrichment_failed', sa.Boolean(), server_default='false', nullable=False))
        batch_op.add_column(sa.Column('duplicate_of_id', sa.UUID(), nullable=True))
        batch_op.add_column(sa.Column('dismiss_reason_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', description || ' ' || coalesce(place, ''))", persisted=True), nullable=True))
        batch_op.create_index('ix_reports_area_codes', ['area_codes'], unique=False, postgresql_using='gin')
        batch_op.create_index(batch_op.f('ix_reports_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index('ix_reports_queue', ['state', sa.literal_column('queue_priority DESC'), 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_reports_search_vector', ['search_vector'], unique=False, postgresql_using='gin')
        batch_op.create_index('ix_reports_tags', ['tags'], unique=False, postgresql_using='gin')
        batch_op.create_foreign_key('fk_reports_duplicate_of_id_reports', 'reports', ['duplicate_of_id'], ['id'])
        batch_op.create_foreign_key('fk_reports_assignee_id_users', 'users', ['assignee_id'], ['id'])
        batch_op.create_check_constraint(
            'priority_override_range', 'priority_override IS NULL OR priority_override BETWEEN 0 AND 100'
        )

    # The audit trail is append-only in the database itself: whatever the code does, an UPDATE,
    # DELETE or TRUNCATE of audit_events fails.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()"
    )



def downgrade():
    op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
    op.execute("DROP FUNCTION audit_events_refuse_change()")
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_constraint('priority_override_range', type_='check')
        batch_op.drop_constraint('fk_reports_assignee_id_users', type_='foreignkey')
        batch_op.drop_constraint('fk_reports_duplicate_of_id_reports', type_='foreignkey')
        batch_op.drop_index('ix_reports_tags', postgresql_using='gin')
        batch_op.drop_index('ix_reports_search_vector', postgresql_using='gin')
        batch_op.drop_index('ix_reports_queue')
        batch_op.drop_index(batch_op.f('ix_reports_assignee_id'))
        batch_op.drop_index('ix_reports_area_codes', postgresql_using='gin')
        batch_op.drop_column('search_vector')
        batch_op.drop_column('dismiss_reason_code')
        batch_op.drop_column('duplicate_of_id')
        batch_op.drop_column('enrichment_failed')
        batch_op.drop_column('triage_attempts')
        batch_op.drop_column('area_codes')
        batch_op.drop_column('tags')
        batch_op.drop_column('assignee_id')
        batch_op.drop_column('queue_priority')
        batch_op.drop_column('priority_override')
        batch_op.drop_column('priority_reasons')

    with op.batch_alter_table('report_messages', schema=None) as batch_op:
        batch_op.drop_constraint('fk_report_messages_author_id_users', type_='foreignkey')
        batch_op.drop_column('author_id')

    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_column('phash')

    with op.batch_alter_table('report_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_notes_report_id'))

    op.drop_table('report_notes')
    with op.batch_alter_table('report_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_links_other_id'))

    op.drop_table('report_links')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))
        batch_op.drop_index('ix_api_tokens_active')

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('tag_codes')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_report_id_id')
        batch_op.drop_index('ix_audit_events_actor_id_id')
        batch_op.drop_index('ix_audit_events_action_id')

    op.drop_table('audit_events')
    with op.batch_alter_table('areas', schema=None) as batch_op:
        batch_op.drop_geospatial_index('idx_areas_geom', postgresql_using='gist', column_name='geom')

    op.drop_geospatial_table('areas')
