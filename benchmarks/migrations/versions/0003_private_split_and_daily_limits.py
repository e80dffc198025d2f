"""public and private dev scores, scored submissions per student, leaderboard settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Runs get `public_metrics` and `private_metrics` (the dev set split by example
digest, `benchmarks.splits`); runs stored before have neither, and reports
show their whole-dev `metrics` as public. `scored_submissions` records each
student's scored submissions, for the daily limit; `leaderboard_settings`
holds the limit and whether the private scores are revealed.
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_metrics', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('private_metrics', sa.JSON(), nullable=True))
    op.create_table(
        'scored_submissions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('student', sa.String(), nullable=False),
        sa.Column('submission_hash', sa.String(length=64), nullable=False),
        sa.Column('submission_name', sa.String(), nullable=False),
        sa.Column('scored_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('student', 'submission_hash', name='uq_scored_submissions_key'),
    )
    op.create_table(
        'leaderboard_settings',
        sa.Column('key', sa.String(), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade():
    op.drop_table('leaderboard_settings')
    op.drop_table('scored_submissions')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('private_metrics')
        batch_op.drop_column('public_metrics')
