"""The community search index (see circolo.community.search for how it is used).

Not a Django model: the index is vendor-specific and read with raw SQL in one module.

- SQLite: `community_searchdoc` (post_id, workspace_id, title and body as normalised terms)
  with an FTS5 external-content table `community_searchfts` over it, kept in step by
  triggers. A post's deletion cascades to its entry (foreign key), whose trigger updates FTS5.
- PostgreSQL: `community_searchdoc` (post_id, workspace_id, a tsvector built in Python) with
  a GIN index. A foreign key would make Django's TRUNCATE-based test flush fail, so row and
  TRUNCATE triggers on community_post remove the entries instead.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

SQLITE_FORWARD = [
    """
    CREATE TABLE community_searchdoc (
        post_id integer NOT NULL PRIMARY KEY
            REFERENCES community_post (id) ON DELETE CASCADE,
        workspace_id integer NOT NULL,
        title text NOT NULL DEFAULT '',
        body text NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX community_searchdoc_ws ON community_searchdoc (workspace_id)",
    """
    CREATE VIRTUAL TABLE community_searchfts USING fts5(
        title, body,
        content='community_searchdoc', content_rowid='post_id',
        tokenize='unicode61 remove_diacritics 0', prefix='3'
    )
    """,
    """
    CREATE TRIGGER community_searchdoc_ai AFTER INSERT ON community_searchdoc BEGIN
        INSERT INTO community_searchfts (rowid, title, body)
        VALUES (new.post_id, new.title, new.body);
    END
    """,
    """
    CREATE TRIGGER community_searchdoc_ad AFTER DELETE ON community_searchdoc BEGIN
        INSERT INTO community_searchfts (community_searchfts, rowid, title, body)
        VALUES ('delete', old.post_id, old.title, old.body);
    END
    """,
    """
    CREATE TRIGGER community_searchdoc_au AFTER UPDATE ON community_searchdoc BEGIN
        INSERT INTO community_searchfts (community_searchfts, rowid, title, body)
        VALUES ('delete', old.post_id, old.title, old.body);
        INSERT INTO community_searchfts (rowid, title, body)
        VALUES (new.post_id, new.title, new.body);
    END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS community_searchdoc_au",
    "DROP TRIGGER IF EXISTS community_searchdoc_ad",
    "DROP TRIGGER IF EXISTS community_searchdoc_ai",
    "DROP TABLE IF EXISTS community_searchfts",
    "DROP TABLE IF EXISTS community_searchdoc",
]

POSTGRES_FORWARD = [
    """
    CREATE TABLE community_searchdoc (
        post_id bigint NOT NULL PRIMARY KEY,
        workspace_id bigint NOT NULL,
        vector tsvector NOT NULL
    )
    """,
    "CREATE INDEX community_searchdoc_ws ON community_searchdoc (workspace_id)",
    "CREATE INDEX community_searchdoc_vector ON community_searchdoc USING gin (vector)",
    """
    CREATE FUNCTION community_searchdoc_forget() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM community_searchdoc WHERE post_id = OLD.id;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION community_searchdoc_forget_all() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE community_searchdoc;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER community_post_searchdoc_delete AFTER DELETE ON community_post
    FOR EACH ROW EXECUTE FUNCTION community_searchdoc_forget()
    """,
    """
    CREATE TRIGGER community_post_searchdoc_truncate AFTER TRUNCATE ON community_post
    FOR EACH STATEMENT EXECUTE FUNCTION community_searchdoc_forget_all()
    """,
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS community_post_searchdoc_truncate ON community_post",
    "DROP TRIGGER IF EXISTS community_post_searchdoc_delete ON community_post",
    "DROP FUNCTION IF EXISTS community_searchdoc_forget_all()",
    "DROP FUNCTION IF EXISTS community_searchdoc_forget()",
    "DROP TABLE IF EXISTS community_searchdoc",
]


def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in statements:
        raise RuntimeError(f"community search supports SQLite and PostgreSQL, not {vendor}")
    for sql in statements[vendor]:
        schema_editor.execute(sql, params=None)


def forward(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD})
    # Posts written before the index existed, read through the historical model and indexed
    # by the same code as live ones.
    from circolo.community.search import INDEX_BATCH, search_entries_write

    post_model = apps.get_model("community", "Post")
    rows = (
        post_model.objects.using(schema_editor.connection.alias)
        .filter(author__erased_at__isnull=True)
        .order_by("pk")
        .values_list("pk", "workspace_id", "number", "thread__title", "html")
    )
    search_entries_write(
        connection=schema_editor.connection, rows=rows.iterator(chunk_size=INDEX_BATCH)
    )


def backward(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD})


class Migration(migrations.Migration):
    dependencies = [("community", "0003_hub")]

    operations = [migrations.RunPython(forward, backward)]
