"""The named-query loader: parsing, schema substitution, and its errors."""

from __future__ import annotations

import pytest

from shared.sql import Queries, SqlError, check_schema_name, parse_queries, render


def test_parse_splits_named_queries_and_keeps_descriptions() -> None:
    text = "-- file comment\n\n-- name: one\n-- says why\nSELECT 1;\n\n-- name: two\nSELECT 2;\n"
    assert parse_queries(text) == {"one": "-- says why\nSELECT 1;", "two": "SELECT 2;"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 0;\n-- name: one\nSELECT 1;", "before the first"),
        ("-- name: one\n-- only a comment\n", "empty"),
        ("-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;", "twice"),
    ],
)
def test_parse_refuses_malformed_files(text: str, problem: str) -> None:
    with pytest.raises(SqlError, match=problem):
        parse_queries(text, "x.sql")


FRAGMENT = "-- fragment: cols\n-- why\nid, state, output,\n  done_at\n\n"


def test_a_fragment_is_the_list_and_the_list_with_values_changed() -> None:
    text = FRAGMENT + (
        "-- name: move\nINSERT INTO /*schema*/t (/*cols*/)\n"
        "SELECT /*cols: state='done', output=coalesce(x, '{\"a,b\": 1}'),\n"
        " done_at=now()*/ FROM s;")
    assert parse_queries(text) == {"move": (
        "INSERT INTO /*schema*/t (id, state, output, done_at)\n"
        "SELECT id, 'done', coalesce(x, '{\"a,b\": 1}'), now() FROM s;")}


@pytest.mark.parametrize(
    ("use", "problem"),
    [
        ("/*cols: status='x'*/", "'status' is not a column of fragment 'cols'"),
        ("/*cols: state*/", "is not column=expression"),
        ("/*colz*/", "neither a placeholder nor a fragment"),
        ("/*schema: x=1*/", "neither a placeholder nor a fragment"),
    ],
)
def test_a_wrong_use_of_a_fragment_is_refused(use: str, problem: str) -> None:
    with pytest.raises(SqlError, match=problem):
        parse_queries(FRAGMENT + f"-- name: q\nSELECT {use} FROM t;", "x.sql")


def test_render_quotes_the_schema_and_fills_channels() -> None:
    sql = "SELECT * FROM /*schema*/jobs; NOTIFY x; SELECT pg_notify('/*channel*/wakeup', '')"
    assert render(sql, "tenant_1") == (
        'SELECT * FROM "tenant_1".jobs; NOTIFY x; SELECT pg_notify(\'tenant_1.wakeup\', \'\')')


@pytest.mark.parametrize("schema", ["", "1abc", "Upper", 'x"; DROP TABLE y; --', "a" * 41])
def test_schema_names_that_could_break_sql_are_refused(schema: str) -> None:
    with pytest.raises(SqlError, match="schema name"):
        check_schema_name(schema)


def test_all_project_queries_load_and_a_missing_name_fails_clearly() -> None:
    queries = Queries.load("ms8jobs")
    assert '"ms8jobs".fetch_jobs' in queries.fetch_jobs
    assert "/*" not in queries.send_job.replace("/**/", "")
    with pytest.raises(SqlError, match="no query named 'nope'"):
        queries["nope"]


def test_a_schema_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(SqlError):
        check_schema_name("ms8jobs\n")


def test_the_analytics_tables_have_a_schema_of_their_own() -> None:
    sql = ("SELECT * FROM /*analytics*/snapshots JOIN /*schema*/jobs; "
           "CREATE SCHEMA /*analytics_name*/")
    assert render(sql, "tenant_1") == (
        'SELECT * FROM "tenant_1_analytics".snapshots JOIN "tenant_1".jobs; '
        'CREATE SCHEMA "tenant_1_analytics"')
