"""DDL the migrations share: making a table append-only in the database itself."""

from __future__ import annotations


def append_only_statements(dialect: str, table: str) -> list[str]:
    """Statements that make the database refuse UPDATE and DELETE (and TRUNCATE) on `table`."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for action in ("UPDATE", "DELETE")
        ]
    return [
        "CREATE OR REPLACE FUNCTION parley_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION parley_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION parley_append_only()",
    ]
