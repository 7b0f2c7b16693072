"""What a transaction's work does once, and only if, the transaction commits.

Business metrics count what happened, and only a committed transaction happened: a
sign-up rolled back by a concurrent one with the same email, a batch whose COMMIT
failed, or the first attempt of a retried request that lost its idempotency race and
replays the winner's response must count nothing. So work that changes state adds its
counts to an `AfterCommit` instead of to the counters, and the transaction runs them
after its COMMIT succeeded.

Two ways in. On a session of `Database.write()` (which `IdempotentWrites.run` and the
event consumers' inbox transactions use too), `after_commit(session)` holds that
transaction's actions; `Database.write()` runs them after its COMMIT, and a rollback
drops them with the session. (Not SQLAlchemy's `after_commit` event: listening on each
session cost ~0.2 ms a transaction here, and a savepoint's release fires it too.)
On a synchronous command for the `BatchWriter`, the caller owns an `AfterCommit`,
wraps the command in `restarting` (an attempt rolled back to its savepoint and run
again must not leave its counts behind) and passes its `run` as
`BatchWriter.submit(after_commit=...)`, which runs it once the batch committed, whether
or not the caller still waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["AfterCommit", "Countable", "after_commit", "restarting", "run_after_commit"]

T = TypeVar("T")
_KEY = "superapp.after_commit"
_log = logging.getLogger(__name__)


class Countable(Protocol):
    """A counter (one label combination of a family)."""

    def inc(self, amount: float = 1) -> None: ...


class AfterCommit:
    """Actions waiting for a transaction to commit, run at most once."""

    __slots__ = ("_actions",)

    def __init__(self) -> None:
        self._actions: list[Callable[[], None]] = []

    def add(self, action: Callable[[], None]) -> None:
        """Run `action` after the commit."""
        self._actions.append(action)

    def count(self, counter: Countable, amount: float = 1) -> None:
        """Add `amount` to `counter` after the commit."""
        self._actions.append(lambda: counter.inc(amount))

    def discard(self) -> None:
        """Forget every action: the work they belong to was rolled back."""
        self._actions.clear()

    def run(self) -> None:
        """The transaction committed: run the actions, once.

        An action that fails is logged and the others still run: the commit stands,
        and its caller must not be told it failed.
        """
        actions, self._actions = self._actions, []
        for action in actions:
            try:
                action()
            except Exception:
                _log.exception("an action after a commit failed")


def after_commit(session: AsyncSession) -> AfterCommit:
    """The actions to run once the transaction of `session` (from `Database.write()`)
    has committed; made on first use. A rolled-back transaction's session is dropped
    with them."""
    found: AfterCommit | None = session.info.get(_KEY)
    if found is None:
        found = session.info[_KEY] = AfterCommit()
    return found


def run_after_commit(session: AsyncSession) -> None:
    """For `Database.write()`, once it committed: run what the work left behind."""
    found: AfterCommit | None = session.info.pop(_KEY, None)
    if found is not None:
        found.run()


def restarting(
    actions: AfterCommit, command: Callable[[Connection], T]
) -> Callable[[Connection], T]:
    """`command`, forgetting what an earlier attempt of it added to `actions`.

    The `BatchWriter` runs a command again after rolling it back to its savepoint
    (`RunAgain`, a deadlock victim); only the attempt that stays counts.
    """

    def attempt(connection: Connection) -> T:
        actions.discard()
        return command(connection)

    return attempt
