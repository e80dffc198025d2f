"""Alembic environment for the results database; run by `results.upgrade()` with an open connection."""

from alembic import context

from benchmarks.results import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata,
                  render_as_batch=True)  # batch mode: SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
