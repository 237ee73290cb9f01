"""Where a study lives: SQLite in the run dir, any SQLAlchemy URL, or a journal file.

Also the study lock: a short critical section (check the ticket queue, pop a trial) that
must be exclusive across every worker of a study, on one host or many. It uses what the
storage itself offers: a PostgreSQL advisory lock, a MySQL named lock, or a file lock beside
a SQLite database or journal file (those live on one filesystem by construction). The lock
file is ``<file>.shufflenas-lock``: ``<file>.lock`` is Optuna's own journal lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import optuna

from common import UserError

MAX_RETRY = 3

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]+:)(?P<pw>[^@]*)(?P<tail>@)")


def redact(url: Optional[str]) -> str:
    """A storage URL safe to print: the password replaced by ``***``."""
    if url is None:
        return "None"
    return _PASSWORD.sub(lambda m: f"{m.group('head')}***{m.group('tail')}", url)


@dataclass
class StudyStorage:
    storage: optuna.storages.BaseStorage
    url: str  # as given (may hold a password: never print it, use `redact`)
    kind: str  # sqlite | postgresql | mysql | journal | rdb
    lock_path: Optional[Path] = None

    @contextlib.contextmanager
    def lock(self, study_name: str) -> Iterator[None]:
        """Exclusive across all workers of ``study_name`` sharing this storage."""
        if self.kind in ("postgresql", "mysql"):
            with _db_lock(self.storage, self.kind, study_name):
                yield
            return
        assert self.lock_path is not None
        with _file_lock(self.lock_path):
            yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_id(study_name: str) -> int:
    return int.from_bytes(hashlib.sha1(f"shufflenas:{study_name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _db_lock(storage: optuna.storages.RDBStorage, kind: str, study_name: str) -> Iterator[None]:
    import sqlalchemy

    engine = storage.engine
    with engine.connect() as conn:
        if kind == "postgresql":
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _lock_id(study_name)})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_id(study_name)})
        else:
            name = f"shufflenas:{study_name}"[:64]
            conn.execute(sqlalchemy.text("SELECT GET_LOCK(:n, -1)"), {"n": name})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:n)"), {"n": name})


def _rdb(url: str, heartbeat_interval: int, grace_period: int) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8; we rely on them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _open_rdb(url, heartbeat_interval, grace_period)


def _open_rdb(url: str, heartbeat_interval: int, grace_period: int) -> optuna.storages.RDBStorage:
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
        )
    except ImportError as exc:
        raise UserError(f"storage {redact(url)} needs a database driver that is not installed ({exc}); "
                        "pip install 'shufflenas[postgresql]' (or [mysql])") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds; all mean "cannot connect"
        detail = redact(str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot open storage {redact(url)}: {detail}") from None


def open_storage(url: Optional[str], run_dir: Path, heartbeat_interval: int = 10,
                 grace_period: int = 30) -> StudyStorage:
    """The storage for ``url`` (None: SQLite file ``run_dir/study.db``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if url is None:
        path = (run_dir / "study.db").resolve()
        url = f"sqlite:///{path}"
    if url.startswith("journal:") or url.endswith((".journal", ".log")):
        path = Path(url[len("journal:"):] if url.startswith("journal:") else url).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(
            str(path), lock_obj=optuna.storages.journal.JournalFileOpenLock(str(path)))
        return StudyStorage(optuna.storages.JournalStorage(backend), url, "journal",
                            path.with_name(path.name + ".shufflenas-lock"))
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        db = url.split("///", 1)[1] if "///" in url else ""
        if not db or db == ":memory:":
            raise UserError("an in-memory SQLite storage cannot be shared by workers; give a file path")
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        lock_path = Path(db + ".shufflenas-lock")
        # Optuna creates a new database's tables on open; two processes opening a fresh file at
        # once race ("table ... already exists"), so opening is serialised by the study's lock file.
        with _file_lock(lock_path):
            storage = _rdb(url, heartbeat_interval, grace_period)
        return StudyStorage(storage, url, "sqlite", lock_path)
    if scheme in ("postgresql", "postgres"):
        return StudyStorage(_rdb(url, heartbeat_interval, grace_period), url, "postgresql")
    if scheme == "mysql":
        return StudyStorage(_rdb(url, heartbeat_interval, grace_period), url, "mysql")
    raise UserError(f"storage {redact(url)}: unknown scheme {scheme!r}; use sqlite:///PATH, "
                    "postgresql://..., mysql+pymysql://... or a journal file (journal:PATH or *.journal)")


def fail_stale(study: optuna.Study) -> None:
    """Fail (and so retry) trials whose worker stopped its heartbeat; no-op without heartbeats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        _fail_never_heard(study)


def _fail_never_heard(study: optuna.Study) -> None:
    """Also fail RUNNING trials that never recorded a heartbeat and started over a grace period ago.

    Optuna's check skips a trial without a heartbeat row, so a worker killed between taking a
    trial and its first heartbeat (a few milliseconds) would hold that trial forever. This reads
    Optuna's own heartbeat table (RDB storages only).
    """
    storage = getattr(study._storage, "_backend", study._storage)  # Optuna wraps an RDBStorage in a cache
    if not isinstance(storage, optuna.storages.RDBStorage) or storage.heartbeat_interval is None:
        return
    import datetime

    from optuna.storages._rdb import models

    grace = datetime.timedelta(seconds=storage.grace_period or 2 * storage.heartbeat_interval)
    now = datetime.datetime.now()  # the clock Optuna stamps datetime_start with (the worker's)
    session = storage.scoped_session()
    try:
        running = (session.query(models.TrialModel)
                   .filter(models.TrialModel.state == optuna.trial.TrialState.RUNNING)
                   .filter(models.TrialModel.study_id == study._study_id).all())
        silent = [t.trial_id for t in running if not t.heartbeats and t.datetime_start is not None
                  and now - t.datetime_start > grace]
    finally:
        session.close()
    callback = storage.get_heartbeat_stale_trial_callback()
    for trial_id in silent:
        try:
            if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        if callback is not None:
            callback(study, storage.get_trial(trial_id))
