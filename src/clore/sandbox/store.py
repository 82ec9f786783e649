"""SQLite implementation of the backend's ``Database``/``Repository`` interface.

One connection per ``SqliteStore``, shared by threads under a lock. Every mutation runs
in a ``BEGIN IMMEDIATE`` transaction, so writers from several processes on one file are
serialized by SQLite itself. File databases use WAL with ``synchronous=FULL``: a commit
is on disk before the response that acknowledges it is sent, so ``kill -9`` loses nothing
that a client was told about. The database holds every sandbox key in plain text, so the
file, its ``-wal``/``-shm`` files and any directory created for it are owner-only.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager, suppress
from pathlib import Path

from clore.sandbox.backend.errors import database_error
from clore.sandbox.migrations import migrate
from clore.sandbox.store_sql import SqliteRepository

__all__ = ["SqliteRepository", "SqliteStore"]


def _create_owner_only(path: Path) -> None:
    """Create the missing directories of ``path`` (0700) and the file itself (0600), and
    tighten an existing file to 0600. Directories that already exist are left alone."""
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)  # mkdir's mode is masked by the umask
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        # Another user's file cannot be changed (EPERM); SQLite then decides if it opens.
        with suppress(PermissionError):
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _tighten(path: Path) -> None:
    with suppress(FileNotFoundError, PermissionError):
        path.chmod(0o600)


class _Transaction:
    """A (possibly nested) transaction on a ``SqliteStore``; nested use joins the outer one."""

    __slots__ = ("_begin", "_nested", "_store", "_writing")

    def __init__(self, store: SqliteStore, begin: str | None, writing: bool) -> None:
        self._store = store
        self._begin = begin
        self._writing = writing
        self._nested = False

    def __enter__(self) -> SqliteRepository:
        store = self._store
        store._lock.acquire()
        if store._depth:
            if self._writing and not store._writing:
                store._lock.release()
                raise RuntimeError("write transaction nested in a read transaction")
            self._nested = True
        elif self._begin is not None:
            try:
                store._db.execute(self._begin)
            except sqlite3.OperationalError as exc:
                store._lock.release()
                raise database_error(f"cannot begin: {exc}") from exc
            except BaseException:
                store._lock.release()
                raise
            store._writing = self._writing
        store._depth += 1
        return store._repo

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        store = self._store
        store._depth -= 1
        try:
            if self._nested:
                return
            if self._begin is not None:
                store._writing = False
                if exc_type is None:
                    try:
                        store._db.execute("COMMIT")
                    except sqlite3.OperationalError as failed:
                        if store._db.in_transaction:
                            store._db.execute("ROLLBACK")
                        raise database_error(f"cannot commit: {failed}") from failed
                elif store._db.in_transaction:
                    store._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                # Locked, busy or failing: the API's "database error, retry later".
                raise database_error(str(exc)) from exc
        finally:
            store._lock.release()


class SqliteStore:
    """A SQLite database (``":memory:"`` or a file path) migrated to the newest schema."""

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout: float = 10.0) -> None:
        self.path = str(path)
        self.memory = self.path == ":memory:" or self.path.startswith("file::memory:")
        if not self.memory:
            _create_owner_only(Path(self.path).expanduser())
        self._db = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout,
            cached_statements=256,
        )
        if not self.memory:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            # SQLite gives new -wal/-shm files the database's mode; older ones keep theirs.
            for suffix in ("-wal", "-shm"):
                _tighten(Path(f"{Path(self.path).expanduser()}{suffix}"))
        self._lock = threading.RLock()
        self._depth = 0
        self._writing = False
        self._repo = SqliteRepository(self._db)
        with self._lock:
            migrate(self._db)

    def write(self) -> AbstractContextManager[SqliteRepository]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        return _Transaction(self, "BEGIN IMMEDIATE", True)

    def read(self) -> AbstractContextManager[SqliteRepository]:
        """A deferred transaction used for consistent reads."""
        return _Transaction(self, "BEGIN", False)

    def peek(self) -> AbstractContextManager[SqliteRepository]:
        """Reads without a transaction: for one statement, where no snapshot is needed."""
        return _Transaction(self, None, False)

    def is_new(self) -> bool:
        """True while the database holds no data (only the empty tables of the schema)."""
        with self._lock:
            row = self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM meta) OR EXISTS (SELECT 1 FROM users) "
                "OR EXISTS (SELECT 1 FROM servers)"
            ).fetchone()
        return not row[0]

    def copy_from(self, template: SqliteStore) -> None:
        """Make this database a page-for-page copy of ``template`` (SQLite's backup API).

        A file database keeps its WAL journal and its owner-only mode; the copy is on disk
        when this returns.
        """
        if template is self:
            raise ValueError("a store cannot be copied onto itself")
        with template._lock, self._lock:
            if self._depth or template._depth:
                raise RuntimeError("cannot copy a database inside a transaction")
            template._db.backup(self._db)
            if not self.memory:
                # The copy's header carries the template's journal mode: WAL again.
                self._db.execute("PRAGMA journal_mode = WAL")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
