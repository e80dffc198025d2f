"""runs keyed by a digest of the task's data

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Runs stored before this revision get an empty data digest: no current data
matches it, so they are run once more on the data as it is now.
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# 0001's unique key has no name; SQLite reports none, so batch mode names it by this convention.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
OLD_KEY = ['submission_hash', 'task', 'seed', 'config_hash']


def old_key_name():
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints('runs'):
        if constraint['column_names'] == OLD_KEY:
            return constraint['name'] or 'uq_runs_submission_hash'
    raise RuntimeError("the runs table lacks revision 0001's unique key (submission_hash, task, seed, config_hash)")


def upgrade():
    name = old_key_name()
    with op.batch_alter_table('runs', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('data_hash', sa.String(length=16), server_default='', nullable=False))
        batch_op.drop_constraint(name, type_='unique')
        batch_op.create_unique_constraint('uq_runs_key', OLD_KEY + ['data_hash'])


def downgrade():
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_runs_key', type_='unique')
        batch_op.create_unique_constraint('uq_runs_submission_hash', OLD_KEY)
        batch_op.drop_column('data_hash')
