"""Which connection errors are the database's (``is_database_outage``): those its driver
raised, told apart from the same ``OSError`` or ``TimeoutError`` met by a handler's own
HTTP calls, which are the handler's failures."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest

from shared.db import is_connection_error, is_database_outage
from tests.support import free_port


async def test_a_database_that_refuses_connections_is_an_outage() -> None:
    with pytest.raises(OSError) as raised:
        await asyncpg.connect(host="127.0.0.1", port=free_port(), user="u", database="d",
                              timeout=5)
    assert type(raised.value).__module__ == "builtins"  # a plain ConnectionRefusedError
    assert is_database_outage(raised.value)


async def test_a_source_that_refuses_connections_is_not() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as raised:
            await session.get(f"http://127.0.0.1:{free_port()}/user-roles/1")
    assert is_connection_error(raised.value)  # an OSError, as the database's would be
    assert not is_database_outage(raised.value)


async def test_a_handler_s_own_timeout_is_not() -> None:
    with pytest.raises(TimeoutError) as raised:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
    assert is_connection_error(raised.value) and not is_database_outage(raised.value)


def test_the_driver_s_errors_and_what_they_caused_are_outages() -> None:
    gone = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    assert is_database_outage(gone)
    try:
        try:
            raise gone
        except asyncpg.exceptions.ConnectionDoesNotExistError as error:
            raise ConnectionResetError("reset") from error
    except ConnectionResetError as caused:
        assert is_database_outage(caused)
    # Not a connection error at all: a handler's own, whatever it came from.
    try:
        try:
            raise gone
        except asyncpg.exceptions.ConnectionDoesNotExistError as error:
            raise ValueError("could not save") from error
    except ValueError as wrapped:
        assert not is_database_outage(wrapped)
    assert not is_database_outage(asyncpg.exceptions.UniqueViolationError("duplicate"))
