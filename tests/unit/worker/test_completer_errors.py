"""Which errors the completer blames on a result (and settles) and which it retries."""

from __future__ import annotations

import asyncpg
import pytest

from shared.queue import InvalidInput
from worker.completer import caused_by_result


@pytest.mark.parametrize(
    ("error", "blamed"),
    [
        (asyncpg.UntranslatableCharacterError("unsupported Unicode escape"), True),  # 22P05
        (asyncpg.InvalidTextRepresentationError("invalid input syntax for json"), True),
        (asyncpg.ProgramLimitExceededError("total size of jsonb array elements"), True),
        (InvalidInput("output", "is not JSON-serialisable"), True),
        (asyncpg.InvalidSQLStatementNameError("prepared statement does not exist"), False),
        (asyncpg.DuplicatePreparedStatementError("already exists"), False),
        (asyncpg.SerializationError("could not serialize access"), False),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), False),
        (asyncpg.DeadlockDetectedError("deadlock detected"), False),
        (RuntimeError("anything else"), False),
    ],
)
def test_only_errors_caused_by_what_is_saved_are_blamed_on_it(
    error: Exception, blamed: bool,
) -> None:
    assert caused_by_result(error) is blamed
