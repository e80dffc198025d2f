"""runs, predictions and submission failures

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_hash', sa.String(length=64), nullable=False),
    sa.Column('submission_name', sa.String(), nullable=False),
    sa.Column('task', sa.String(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('config_hash', sa.String(length=16), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('metadata_json', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('train_examples', sa.Integer(), nullable=False),
    sa.Column('wall_seconds', sa.Double(), nullable=False),
    sa.Column('train_sequences_per_second', sa.Double(), nullable=False),
    sa.Column('train_tokens_per_second', sa.Double(), nullable=False),
    sa.Column('hardware', sa.String(), nullable=False),
    sa.Column('versions', sa.JSON(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_hash', 'task', 'seed', 'config_hash')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_submission_hash'), ['submission_hash'], unique=False)

    op.create_table('submission_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_hash', sa.String(length=64), nullable=False),
    sa.Column('submission_name', sa.String(), nullable=False),
    sa.Column('task', sa.String(), nullable=False),
    sa.Column('error', sa.String(), nullable=False),
    sa.Column('failed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('predictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('example_index', sa.String(), nullable=False),
    sa.Column('prediction', sa.Double(), nullable=False),
    sa.Column('label', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_predictions_run_id'), ['run_id'], unique=False)



def downgrade():
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_predictions_run_id'))

    op.drop_table('predictions')
    op.drop_table('submission_failures')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_submission_hash'))

    op.drop_table('runs')
