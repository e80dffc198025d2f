"""The results database (SQLite through SQLAlchemy): every run and its predictions.

A `Run` row is written in one transaction together with its predictions, once
the run has finished, so a killed process leaves either a complete run or
nothing; re-running skips the (submission hash, task, seed, config) keys that
are already there. A submission that cannot be benchmarked gets a
`SubmissionFailure` row instead (replaced when it is retried).
"""

import datetime
import hashlib
import json
import platform

import sqlalchemy
from sqlalchemy import orm


class Base(orm.DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (sqlalchemy.UniqueConstraint("submission_hash", "task", "seed", "config_hash"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    submission_hash: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(64), index=True)
    submission_name: orm.Mapped[str]
    task: orm.Mapped[str]
    seed: orm.Mapped[int]
    config_hash: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(16))
    config: orm.Mapped[dict] = orm.mapped_column(sqlalchemy.JSON)
    metadata_json: orm.Mapped[dict] = orm.mapped_column(sqlalchemy.JSON)
    metrics: orm.Mapped[dict] = orm.mapped_column(sqlalchemy.JSON)
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


class ResultsDatabase:
    def __init__(self, path):
        self.engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        Base.metadata.create_all(self.engine)

    def session(self):
        return orm.Session(self.engine, expire_on_commit=False)

    def has_run(self, submission_hash, task, seed, config):
        with self.session() as session:
            query = sqlalchemy.select(Run.id).filter_by(
                submission_hash=submission_hash, task=task, seed=seed, config_hash=config_hash(config)
            )
            return session.scalar(query) is not None

    def add_runs(self, runs):
        """Store finished runs (with their predictions attached) in one transaction."""
        with self.session() as session, session.begin():
            for run in runs:
                session.execute(
                    sqlalchemy.delete(SubmissionFailure).filter_by(submission_hash=run.submission_hash, task=run.task)
                )
                session.add(run)

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
