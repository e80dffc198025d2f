"""The results database (SQLAlchemy: a SQLite file, or PostgreSQL by URL): every run and its predictions.

A `Run` row is written in one transaction together with its predictions, once
the run has finished, so a killed process leaves either a complete run or
nothing; re-running skips the (submission hash, task, seed, config, data)
keys that are already there (`data_hash`: a digest of the task's files, so
changed or restored data is run again). A submission or task that cannot be
benchmarked gets a `SubmissionFailure` row instead (replaced when it is
retried).

The schema is versioned with Alembic (as nbgrader's gradebook is): opening
a database upgrades it to the newest revision in `benchmarks/migrations`,
holding the database's write lock (SQLite) or an advisory lock (PostgreSQL)
meanwhile, so drivers that open one new database at once do not race.
Several drivers may write to one database at once; a run that another driver
stored first is kept, not duplicated.
"""

import datetime
import hashlib
import json
import os
import platform

import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import orm

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
INITIAL_REVISION = "0001"
# Any constant: the key of the PostgreSQL advisory lock held while upgrading the schema.
UPGRADE_LOCK = 0x62656E6368


class Base(orm.DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        sqlalchemy.UniqueConstraint("submission_hash", "task", "seed", "config_hash", "data_hash", name="uq_runs_key"),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    submission_hash: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(64), index=True)
    submission_name: orm.Mapped[str]
    task: orm.Mapped[str]
    seed: orm.Mapped[int]
    config_hash: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(16))
    config: orm.Mapped[dict] = orm.mapped_column(sqlalchemy.JSON)
    data_hash: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(16), server_default="")
    metadata_json: orm.Mapped[dict] = orm.mapped_column(sqlalchemy.JSON)
    metrics: orm.Mapped[dict] = orm.mapped_column(sqlalchemy.JSON)  # the whole dev set
    # The dev set's public and private splits (`benchmarks.splits`); None for runs stored before revision 0003.
    public_metrics: orm.Mapped[dict | None] = orm.mapped_column(sqlalchemy.JSON, nullable=True)
    private_metrics: orm.Mapped[dict | None] = orm.mapped_column(sqlalchemy.JSON, nullable=True)
    train_examples: orm.Mapped[int]
    wall_seconds: orm.Mapped[float]
    train_sequences_per_second: orm.Mapped[float]
    train_tokens_per_second: orm.Mapped[float]
    hardware: orm.Mapped[str]
    versions: orm.Mapped[dict] = orm.mapped_column(sqlalchemy.JSON)
    finished_at: orm.Mapped[datetime.datetime]
    predictions: orm.Mapped[list["Prediction"]] = orm.relationship(back_populates="run", cascade="all, delete-orphan")


class Prediction(Base):
    """One example's prediction: class id (as float) or score; label if known."""

    __tablename__ = "predictions"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    run_id: orm.Mapped[int] = orm.mapped_column(sqlalchemy.ForeignKey("runs.id"), index=True)
    split: orm.Mapped[str]  # "dev" or "test"
    position: orm.Mapped[int]  # row order in the split's file
    example_index: orm.Mapped[str]  # GLUE's index column
    prediction: orm.Mapped[float]
    label: orm.Mapped[float | None]
    run: orm.Mapped[Run] = orm.relationship(back_populates="predictions")


class SubmissionFailure(Base):
    __tablename__ = "submission_failures"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    submission_hash: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(64))
    submission_name: orm.Mapped[str]
    task: orm.Mapped[str]  # "*" when the submission itself is broken
    error: orm.Mapped[str]
    failed_at: orm.Mapped[datetime.datetime]


class ScoredSubmission(Base):
    """One submission of a student that was scored: what the daily limit counts."""

    __tablename__ = "scored_submissions"
    __table_args__ = (sqlalchemy.UniqueConstraint("student", "submission_hash", name="uq_scored_submissions_key"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    student: orm.Mapped[str]
    submission_hash: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(64))
    submission_name: orm.Mapped[str]
    scored_at: orm.Mapped[datetime.datetime]


class LeaderboardSetting(Base):
    """Staff settings kept with the results: `daily_limit` (scored submissions per student per UTC day,
    null = no limit) and `private_revealed`."""

    __tablename__ = "leaderboard_settings"

    key: orm.Mapped[str] = orm.mapped_column(primary_key=True)
    value: orm.Mapped[object] = orm.mapped_column(sqlalchemy.JSON)


def config_hash(config):
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def hardware_description():
    import keras

    devices = []
    if keras.backend.backend() == "jax":
        import jax

        devices = sorted({d.device_kind for d in jax.devices()})
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_physical_devices("GPU")]
    cpu = platform.processor() or platform.machine()
    return f"{cpu}; {', '.join(devices) or 'CPU only'}; backend {keras.backend.backend()}"


def library_versions():
    import importlib.metadata

    names = ("keras", "keras-hub", "tensorflow", "jax", "numpy", "scikit-learn", "scipy")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def is_url(location):
    return "://" in location


def upgrade(engine):
    """Bring the schema to the newest Alembic revision, one driver at a time.

    A database written before migrations existed has the tables but no
    version: it is marked as the initial revision, then upgraded.
    """
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        config.attributes["connection"] = connection
        inspector = sqlalchemy.inspect(connection)
        if inspector.has_table("runs") and not inspector.has_table("alembic_version"):
            command.stamp(config, INITIAL_REVISION)
        command.upgrade(config, "head")


def sqlite_engine(path, exclusive=False):
    """An engine on the SQLite file `path` that waits up to a minute for another writer.

    `exclusive`: every transaction starts with BEGIN EXCLUSIVE, so it holds
    the write lock from its first statement; Python's sqlite3 module would
    otherwise run the schema's CREATE TABLEs outside any transaction, and two
    drivers creating one new file would both create them.
    """
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})
    if exclusive:
        @sqlalchemy.event.listens_for(engine, "connect")
        def leave_transactions_to_sqlalchemy(dbapi_connection, _):
            dbapi_connection.isolation_level = None

        @sqlalchemy.event.listens_for(engine, "begin")
        def begin_exclusive(connection):
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
    return engine


class ResultsDatabase:
    """`location`: a SQLite file path, or a SQLAlchemy URL (postgresql://user@host/db)."""

    def __init__(self, location):
        if is_url(location):
            self.engine = sqlalchemy.create_engine(location, pool_pre_ping=True)
            upgrade(self.engine)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
            upgrade_engine = sqlite_engine(location, exclusive=True)
            upgrade(upgrade_engine)
            upgrade_engine.dispose()
            self.engine = sqlite_engine(location)

    def session(self):
        return orm.Session(self.engine, expire_on_commit=False)

    def has_run(self, submission_hash, task, seed, config, data_hash):
        with self.session() as session:
            query = sqlalchemy.select(Run.id).filter_by(
                submission_hash=submission_hash, task=task, seed=seed, config_hash=config_hash(config),
                data_hash=data_hash,
            )
            return session.scalar(query) is not None

    def add_runs(self, runs):
        """Store finished runs (with their predictions attached) in one transaction.

        If another driver stored one of them meanwhile (the unique key), its
        copy is kept and these are dropped; returns whether these were stored.
        """
        try:
            with self.session() as session, session.begin():
                for run in runs:
                    session.execute(
                        sqlalchemy.delete(SubmissionFailure).filter_by(submission_hash=run.submission_hash, task=run.task)
                    )
                    session.add(run)
        except sqlalchemy.exc.IntegrityError:
            return False
        return True

    def add_failure(self, submission_hash, submission_name, task, error):
        with self.session() as session, session.begin():
            session.execute(sqlalchemy.delete(SubmissionFailure).filter_by(submission_hash=submission_hash, task=task))
            session.add(
                SubmissionFailure(
                    submission_hash=submission_hash,
                    submission_name=submission_name,
                    task=task,
                    error=error,
                    failed_at=datetime.datetime.now(datetime.UTC),
                )
            )

    def clear_failures(self, submission_hash):
        with self.session() as session, session.begin():
            session.execute(sqlalchemy.delete(SubmissionFailure).filter_by(submission_hash=submission_hash, task="*"))

    def setting(self, key, default=None):
        with self.session() as session:
            row = session.get(LeaderboardSetting, key)
            return default if row is None else row.value

    def set_setting(self, key, value):
        with self.session() as session, session.begin():
            session.merge(LeaderboardSetting(key=key, value=value))

    def private_revealed(self):
        return bool(self.setting("private_revealed", False))

    def admit_scored_submission(self, student, submission_hash, submission_name, now=None):
        """Record that `student`'s submission is scored, or refuse it over the daily limit.

        A submission already admitted (same files) is free to run again. The
        day is the UTC calendar day. Raises `splits.DailyLimitReached`.
        """
        from benchmarks.splits import DailyLimitReached

        now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        limit = self.setting("daily_limit")
        with self.session() as session, session.begin():
            if session.scalar(sqlalchemy.select(ScoredSubmission.id).filter_by(
                    student=student, submission_hash=submission_hash)) is not None:
                return
            day = now.replace(hour=0, minute=0, second=0, microsecond=0)
            used = session.scalar(sqlalchemy.select(sqlalchemy.func.count(ScoredSubmission.id)).where(
                ScoredSubmission.student == student, ScoredSubmission.scored_at >= day))
            if limit is not None and used >= limit:
                wait = day + datetime.timedelta(days=1) - now
                hours, minutes = divmod(int(wait.total_seconds()) // 60, 60)
                raise DailyLimitReached(
                    f"{student} has used {used} of {limit} scored submissions today (UTC); {submission_name} was "
                    f"not scored. The next one is accepted after 00:00 UTC, in {hours} h {minutes} min; "
                    f"re-running a submission already scored does not count."
                )
            session.add(ScoredSubmission(student=student, submission_hash=submission_hash,
                                         submission_name=submission_name, scored_at=now))

    def runs(self):
        with self.session() as session:
            return list(session.scalars(sqlalchemy.select(Run).order_by(Run.id)))

    def failures(self):
        with self.session() as session:
            return list(session.scalars(sqlalchemy.select(SubmissionFailure).order_by(SubmissionFailure.id)))

    def predictions(self, run_id, split):
        with self.session() as session:
            query = sqlalchemy.select(Prediction).filter_by(run_id=run_id, split=split).order_by(Prediction.position)
            return list(session.scalars(query))
