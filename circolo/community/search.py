"""Community search: the index of posts and the selector that reads it.

The index (made by migration 0004) holds one entry per post, and only its words:

- ``community_searchdoc`` (post_id, workspace_id, ...) with, on SQLite, the normalised
  title and body terms and an FTS5 external-content table ``community_searchfts`` over
  them (kept in step by triggers; ranked by bm25, the title weighing 4x the body); on
  PostgreSQL a ``tsvector`` built here in Python (title lexemes weight A, body D) with a
  GIN index, ranked by ``ts_rank`` (normalised by length).
- Everything that decides who may see a post or that a filter reads (its space, the
  thread's and the post's hidden state, the accepted answer, tags, author, date) is read
  from the live post and thread rows at query time, not copied into the index. Hiding,
  showing, approving, accepting, moving or retagging a thread can therefore never leave
  a stale entry that leaks: the index only has to follow a post's text, which
  ``post_index`` does inside the transaction of every write (services._after_post), and
  deleting a post (or its thread, or its workspace) deletes its entry in the database.
- Posts by erased members are not searchable: their entries are removed by the erasure
  (people.privacy eraser below) and never rebuilt, so neither their words nor their name
  can be found through search. (Their posts stay on thread pages; that is the community's
  erasure policy, not search's.)

Text is normalised in Python by one function for documents and queries, so SQLite and
PostgreSQL find the same posts (ranking differs slightly: bm25 vs ts_rank):

- NFKC, case folding, Latin accents removed ("perché" = "perche", "café" = "cafe"),
  a few letters spelled out (ø, æ, œ, ł, đ, ß via case folding).
- Words (letters and digits) get a light stem shared by English, Italian and Spanish: a
  final "s" (not "ss") is dropped, then one final vowel, for words longer than three
  letters. So tazza/tazze, filtro/filtri, molienda/moliendas, grinder/grinders,
  coffee/coffees, caffè/caffe meet. The last word of a query also matches as a prefix
  (three letters or more), which covers what the stem misses ("macin" finds "macinatura").
- Chinese, Japanese and Korean runs are cut into overlapping character bigrams, like
  Elasticsearch's cjk_bigram ("咖啡机" -> "咖啡", "啡机"); documents also keep each
  character alone so that a single-character query ("咖") finds it. A query run of two or
  more characters searches its bigrams, all of which must appear.
- All query terms must match (AND). Results are ordered by relevance, then newest first.
  Two bounds keep common words cheap at a million posts: counting stops at RESULTS_MAX
  ("more than 1,000 results", and no page beyond it), and relevance is computed over the
  newest CANDIDATES_MAX matches only (for a word in more posts than that, the best of the
  recent ones come first, which suits a forum).
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from typing import Any

from django.db import connection as default_connection
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from circolo.people.models import Member
from circolo.people.normalise import InputError, normalise_tag
from circolo.people.privacy import DataSubject, register_eraser

from .models import CommunityProfile, Post, Space, Thread
from .selectors import readable_spaces
from .services import CommunityError

QUERY_MAX_CHARS = 200
QUERY_TERMS_MAX = 16
# Counting and paging stop here: "more than 1,000 results" is as useful as the exact figure.
RESULTS_MAX = 1000
# Relevance is computed over the newest this-many matches of a query (all of them for all but
# the most common words), so that a word in half a million posts costs what one in 10,000 does.
CANDIDATES_MAX = 10_000
PER_PAGE = 20
PER_PAGE_MAX = 50
EXCERPT_CHARS = 240
INDEX_BATCH = 2000
# Longer "words" are cut (a pasted hash or URL fragment), keeping the index small.
WORD_MAX = 60
PREFIX_MIN = 4
# PostgreSQL keeps positions up to 16383 and at most 256 of them per lexeme.
PG_POSITION_MAX = 16383
PG_POSITIONS_PER_LEXEME = 256
TITLE_WEIGHT = 4.0

# Han (with radicals and extensions), kana, bopomofo, Hangul: scripts written without spaces.
_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_TOKEN_RE = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")
_CJK_RE = re.compile(f"[{_CJK}]")
_WORD_RE = re.compile("[^\\W_]+")
_MARKS_RE = re.compile("[\u0300-\u036f]")
_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_FOLDS = str.maketrans(
    {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ı": "i", "ħ": "h", "æ": "ae", "œ": "oe", "þ": "th"}
)


# --------------------------------------------------------------------------- normalising


def fold(text: str) -> str:
    """Compatibility forms, case and Latin accents folded away ("Perché" -> "perche")."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():
        return text
    text = _MARKS_RE.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", text).translate(_FOLDS)


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """A folded word's light stem, shared by en/it/es: final "s" then one final vowel off."""
    word = word[:WORD_MAX]
    if len(word) > 3 and word[-1] == "s" and word[-2] != "s":
        word = word[:-1]
    if len(word) > 3 and word[-1] in "aeiou":
        word = word[:-1]
    return word


def _grams(run: str, *, unigrams: bool) -> list[str]:
    if len(run) == 1:
        return [run]
    grams = [run[i : i + 2] for i in range(len(run) - 1)]
    return grams + list(run) if unigrams else grams


def terms(text: str) -> list[str]:
    """The index terms of a document's text, in order (CJK bigrams then its characters)."""
    text = fold(text)
    if _CJK_RE.search(text) is None:
        return [stem(word) for word in _WORD_RE.findall(text)]
    found: list[str] = []
    for run, word in _TOKEN_RE.findall(text):
        if word:
            found.append(stem(word))
        else:
            found.extend(_grams(run, unigrams=True))
    return found


@dataclass(frozen=True)
class ParsedQuery:
    """What a query searches for: terms that must all match, and maybe a prefix."""

    words: tuple[str, ...]
    prefix: str = ""

    @property
    def empty(self) -> bool:
        return not self.words and not self.prefix

    def fts5(self) -> str:
        parts = [f'"{word}"' for word in self.words]
        if self.prefix:
            parts.append(f'"{self.prefix}"*')
        return " ".join(parts)

    def tsquery(self) -> str:
        parts = [f"'{word}'" for word in self.words]
        if self.prefix:
            parts.append(f"'{self.prefix}':*")
        return " & ".join(parts)


def query_parse(query: str) -> ParsedQuery:
    """The terms of what a member typed; CommunityError("q") when it is too long."""
    query = str(query)
    if len(query) > QUERY_MAX_CHARS:
        raise CommunityError(
            "q",
            _("Search for at most %(limit)d characters.") % {"limit": QUERY_MAX_CHARS},
        )
    tokens = _TOKEN_RE.findall(fold(query))
    words: list[str] = []
    prefix = ""
    for index, (run, word) in enumerate(tokens):
        if run:
            words.extend(_grams(run, unigrams=False))
            continue
        stemmed = stem(word)
        if index == len(tokens) - 1 and len(stemmed) >= PREFIX_MIN:
            prefix = stemmed
        else:
            words.append(stemmed)
    unique = tuple(dict.fromkeys(words))
    if prefix in unique:
        prefix = ""
    if len(unique) + bool(prefix) > QUERY_TERMS_MAX:
        raise CommunityError(
            "q", _("Search for at most %(limit)d words.") % {"limit": QUERY_TERMS_MAX}
        )
    return ParsedQuery(words=unique, prefix=prefix)


def plain_text(html: str) -> str:
    """The text of a post's sanitised HTML, tags dropped and entities decoded."""
    return _SPACE_RE.sub(" ", html_lib.unescape(_TAG_RE.sub(" ", html))).strip()


# --------------------------------------------------------------------------- writing


def _pg_vector(title: Sequence[str], body: Sequence[str]) -> str:
    """A tsvector literal: each term with its positions, weight A in the title."""
    positions: dict[str, list[str]] = {}
    position = 0
    for weight, words in (("A", title), ("", body)):
        for word in words:
            spots = positions.setdefault(word, [])
            if position < PG_POSITION_MAX and len(spots) < PG_POSITIONS_PER_LEXEME:
                position += 1
                spots.append(f"{position}{weight}")
    return " ".join(
        f"'{word}':{','.join(spots)}" if spots else f"'{word}'" for word, spots in positions.items()
    )


def _entry(vendor: str, post_id: int, workspace_id: int, title: str, html: str) -> tuple[Any, ...]:
    title_terms = terms(title)
    body_terms = terms(plain_text(html))
    if vendor == "postgresql":
        return (post_id, workspace_id, _pg_vector(title_terms, body_terms))
    return (post_id, workspace_id, " ".join(title_terms), " ".join(body_terms))


def _upsert_sql(vendor: str) -> str:
    if vendor == "postgresql":
        return (
            "INSERT INTO community_searchdoc (post_id, workspace_id, vector) "
            "VALUES (%s, %s, %s::tsvector) ON CONFLICT (post_id) DO UPDATE "
            "SET workspace_id = EXCLUDED.workspace_id, vector = EXCLUDED.vector"
        )
    return (
        "INSERT INTO community_searchdoc (post_id, workspace_id, title, body) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (post_id) DO UPDATE "
        "SET workspace_id = excluded.workspace_id, title = excluded.title, body = excluded.body"
    )


def search_entries_write(
    *, rows: Iterable[tuple[int, int, int, str, str]], connection: Any = None
) -> int:
    """Index posts given as (post id, workspace id, number, thread title, html) rows, in
    batches (PostgreSQL: COPY when the entries are new); replaces existing entries. Returns
    how many were written. The caller holds the transaction."""
    connection = connection or default_connection
    vendor = connection.vendor
    written = 0
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute(
                    "SELECT post_id FROM community_searchdoc WHERE post_id = ANY(%s)",
                    [[entry[0] for entry in batch]],
                )
                known = {row[0] for row in cursor.fetchall()}
                fresh = [entry for entry in batch if entry[0] not in known]
                if fresh:
                    with cursor.copy(
                        "COPY community_searchdoc (post_id, workspace_id, vector) FROM STDIN"
                    ) as copy:
                        for entry in fresh:
                            copy.write_row(entry)
                stale = [entry for entry in batch if entry[0] in known]
                if stale:
                    cursor.executemany(_upsert_sql(vendor), stale)
            else:
                cursor.executemany(_upsert_sql(vendor), batch)
        batch.clear()

    for post_id, workspace_id, number, title, html in rows:
        batch.append(_entry(vendor, post_id, workspace_id, title if number == 1 else "", html))
        written += 1
        if len(batch) >= INDEX_BATCH:
            flush()
    if batch:
        flush()
    return written


def post_index(*, post: Post) -> None:
    """Bring one post's entry up to date with its text (and its thread's title if it opens
    it), in the caller's transaction; a post by an erased member has no entry."""
    vendor = default_connection.vendor
    if post.author.erased_at is not None:
        with default_connection.cursor() as cursor:
            cursor.execute("DELETE FROM community_searchdoc WHERE post_id = %s", [post.pk])
        return
    title = post.thread.title if post.number == 1 else ""
    with default_connection.cursor() as cursor:
        cursor.execute(
            _upsert_sql(vendor), _entry(vendor, post.pk, post.workspace_id, title, post.html)
        )


def search_rebuild(*, workspace_id: int | None = None) -> int:
    """Rebuild the index from the posts, for one workspace or all of them, in one
    transaction; running it twice gives the same index. Returns the entries written."""
    posts = Post.objects.all()
    if workspace_id is not None:
        posts = posts.filter(workspace_id=workspace_id)
    sqlite = default_connection.vendor == "sqlite"
    with transaction.atomic(), default_connection.cursor() as cursor:
        if sqlite:
            # Row by row, FTS5's triggers cost more than the rest of the work: they are set
            # aside (inside this transaction) and FTS5 rebuilds from the table in one pass.
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER {name}")
        if workspace_id is None:
            cursor.execute("DELETE FROM community_searchdoc")
        else:
            cursor.execute(
                "DELETE FROM community_searchdoc WHERE workspace_id = %s", [workspace_id]
            )
        written = search_entries_write(rows=_keyset(posts))
        if sqlite:
            cursor.execute(
                "INSERT INTO community_searchfts (community_searchfts) VALUES ('rebuild')"
            )
            for sql in _sqlite_trigger_sql():
                cursor.execute(sql)
    return written


SQLITE_TRIGGERS = ("community_searchdoc_ai", "community_searchdoc_ad", "community_searchdoc_au")


def _sqlite_trigger_sql() -> list[str]:
    """The triggers as migration 0004 made them (one definition)."""
    migration = import_module("circolo.community.migrations.0004_search")
    made = [sql for sql in migration.SQLITE_FORWARD if "CREATE TRIGGER" in sql]
    assert len(made) == len(SQLITE_TRIGGERS)
    return made


def _keyset(posts: Any) -> Iterator[tuple[int, int, int, str, str]]:
    """(post id, workspace id, number, thread title, html) of the posts to index, by ranges
    of ids, without a server-side cursor held across writes. Each range reads the posts
    alone, then the titles and erased authors it needs by primary key: no join for the
    planner to turn into scans of whole tables (it did, on freshly loaded tables)."""
    bounds = posts.order_by().aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return
    start = bounds["low"]
    while start <= bounds["high"]:
        end = start + INDEX_BATCH
        chunk = list(
            posts.filter(pk__gte=start, pk__lt=end)
            .order_by("pk")
            .values_list("pk", "workspace_id", "number", "thread_id", "author_id", "html")
        )
        start = end
        if not chunk:
            continue
        erased = set(
            Member.objects.filter(
                pk__in={row[4] for row in chunk}, erased_at__isnull=False
            ).values_list("pk", flat=True)
        )
        titles = dict(
            Thread.objects.filter(pk__in={row[3] for row in chunk if row[2] == 1}).values_list(
                "pk", "title"
            )
        )
        for post_id, workspace_id, number, thread_id, author_id, html in chunk:
            if author_id not in erased:
                yield post_id, workspace_id, number, titles.get(thread_id, ""), html


def _search_erase(*, subject: DataSubject) -> dict[str, int]:
    """people.privacy eraser: the erased member's posts leave the search index."""
    with default_connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM community_searchdoc WHERE post_id IN "
            f"(SELECT id FROM community_post WHERE author_id IN "
            f"({', '.join(['%s'] * len(subject.member_ids))}))",
            list(subject.member_ids),
        )
        removed = cursor.rowcount
    return {"community_search_entries": max(removed, 0)}


register_eraser(_search_erase)


# --------------------------------------------------------------------------- reading


class SolvedFilter:
    ANY = ""
    SOLVED = "yes"
    UNANSWERED = "no"


@dataclass(frozen=True)
class SearchFilters:
    """What narrows a search: a space's address (its sub-groups included), a tag, solved or
    unanswered questions, an author's @handle, a range of days (both included)."""

    space: str = ""
    tag: str = ""
    solved: str = SolvedFilter.ANY
    author: str = ""
    after: dt.date | None = None
    before: dt.date | None = None

    @property
    def active(self) -> bool:
        return any((self.space, self.tag, self.solved, self.author, self.after, self.before))


@dataclass(frozen=True)
class SearchResult:
    post_id: int
    post_number: int
    thread_id: int
    thread_title: str
    space_slug: str
    space_name: str
    author_handle: str
    author_name: str
    created_at: dt.datetime
    excerpt: SafeString
    solved: bool
    accepted: bool
    question: bool


@dataclass(frozen=True)
class SearchPage:
    """One page of results. `total` stops at RESULTS_MAX (then `more` is true)."""

    query: str
    results: list[SearchResult]
    number: int
    per_page: int
    total: int
    more: bool
    # The query had no word to search for (empty, or only punctuation).
    empty_query: bool = False

    @property
    def num_pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def _date(params: Mapping[str, str], name: str) -> dt.date | None:
    raw = str(params.get(name, "") or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise CommunityError(
            name, _("Write the date as year-month-day, for example 2026-03-31.")
        ) from None


def search_filters_parse(params: Mapping[str, str]) -> SearchFilters:
    """Filters from a query string; CommunityError naming the parameter when one is bad."""
    solved = str(params.get("solved", "") or "").strip()
    if solved not in (SolvedFilter.ANY, SolvedFilter.SOLVED, SolvedFilter.UNANSWERED):
        raise CommunityError(
            "solved", _('Choose "yes" (solved questions) or "no" (unanswered questions).')
        )
    tag = str(params.get("tag", "") or "").strip()
    if tag:
        try:
            tag = normalise_tag(tag)
        except InputError as error:
            raise CommunityError("tag", error.message) from None
    after, before = _date(params, "after"), _date(params, "before")
    if after and before and after > before:
        raise CommunityError("before", _("The end of the date range comes before its start."))
    return SearchFilters(
        space=str(params.get("space", "") or "").strip()[:60],
        tag=tag,
        solved=solved,
        author=str(params.get("author", "") or "").strip().lstrip("@")[:40],
        after=after,
        before=before,
    )


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _where(
    *,
    vendor: str,
    workspace_id: int,
    space_ids: Sequence[int],
    filters: SearchFilters,
    author_id: int | None,
) -> tuple[list[str], list[Any]]:
    """Conditions on the live post (p) and thread (t) rows that every result meets."""
    ops = default_connection.ops
    where = [
        "p.workspace_id = %s",
        "p.hidden_at IS NULL",
        "t.hidden_at IS NULL",
        f"t.space_id IN ({', '.join(['%s'] * len(space_ids))})",
    ]
    params: list[Any] = [workspace_id, *space_ids]
    if filters.solved:
        where.append("t.kind = %s")
        params.append(Thread.Kind.QUESTION)
        where.append(
            "t.accepted_post_id IS NOT NULL"
            if filters.solved == SolvedFilter.SOLVED
            else "t.accepted_post_id IS NULL"
        )
    if author_id is not None:
        where.append("p.author_id = %s")
        params.append(author_id)
    if filters.after:
        where.append("p.created_at >= %s")
        params.append(ops.adapt_datetimefield_value(_day_start(filters.after)))
    if filters.before:
        where.append("p.created_at < %s")
        params.append(
            ops.adapt_datetimefield_value(_day_start(filters.before + dt.timedelta(days=1)))
        )
    if filters.tag:
        if vendor == "postgresql":
            where.append("t.tags @> %s::jsonb")
            params.append(json.dumps([filters.tag]))
        else:
            where.append("EXISTS (SELECT 1 FROM json_each(t.tags) WHERE json_each.value = %s)")
            params.append(filters.tag)
    return where, params


def _matches(
    parsed: ParsedQuery, where: list[str], params: list[Any], vendor: str
) -> tuple[str, str, str, list[Any], list[Any]]:
    """FROM ... WHERE of the matching posts, the score expression (lower is better), the
    index's post id (newest last), and their parameters."""
    if vendor == "postgresql":
        source = (
            "FROM community_searchdoc d "
            "JOIN community_post p ON p.id = d.post_id "
            "JOIN community_thread t ON t.id = p.thread_id "
            f"WHERE d.workspace_id = %s AND d.vector @@ %s::tsquery AND {' AND '.join(where)}"
        )
        source_params = [params[0], parsed.tsquery(), *params]
        score = "-ts_rank(d.vector, %s::tsquery, 1)"
        return source, score, "d.post_id", source_params, [parsed.tsquery()]
    # CROSS JOIN keeps SQLite from looping over posts and probing the index for each.
    source = (
        "FROM community_searchfts "
        "CROSS JOIN community_post p ON p.id = community_searchfts.rowid "
        "CROSS JOIN community_thread t ON t.id = p.thread_id "
        f"WHERE community_searchfts MATCH %s AND {' AND '.join(where)}"
    )
    score = f"bm25(community_searchfts, {TITLE_WEIGHT}, 1.0)"
    return source, score, "community_searchfts.rowid", [parsed.fts5(), *params], []


def _space_ids(spaces: Sequence[Space], slug: str) -> list[int]:
    if not slug:
        return [space.pk for space in spaces]
    chosen = [space for space in spaces if space.slug == slug]
    if not chosen:
        # The same answer for a space that does not exist and one the viewer may not read.
        raise CommunityError("space", _("There is no space with this address."))
    root = chosen[0].pk
    return [space.pk for space in spaces if space.pk == root or space.parent_id == root]


def _author_id(workspace_id: int, handle: str) -> int | None:
    if not handle:
        return None
    profile = (
        CommunityProfile.objects.filter(
            workspace_id=workspace_id, handle__iexact=handle, member__erased_at__isnull=True
        )
        .values_list("member_id", flat=True)
        .first()
    )
    if profile is None:
        raise CommunityError(
            "author", _("No member has the handle @%(handle)s.") % {"handle": handle}
        )
    return profile


def search_posts(
    *,
    workspace_id: int,
    viewer: Any,
    query: str,
    filters: SearchFilters | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    spaces: Sequence[Space] | None = None,
) -> SearchPage:
    """Posts the viewer may read that match the query and filters, by relevance then newest
    first; hidden posts and threads never appear. CommunityError names a bad input (q,
    space, author, page); an empty query gives an empty page. `spaces`: the viewer's
    readable spaces when the caller already has them (selectors.readable_spaces)."""
    filters = filters or SearchFilters()
    per_page = max(1, min(int(per_page), PER_PAGE_MAX))
    if page < 1:
        raise CommunityError("page", _("Pages are numbered from 1."))
    parsed = query_parse(query)
    if spaces is None:
        spaces = readable_spaces(workspace_id, viewer)
    space_ids = _space_ids(spaces, filters.space)
    author_id = _author_id(workspace_id, filters.author)
    if parsed.empty or not space_ids:
        return SearchPage(
            query=query,
            results=[],
            number=1,
            per_page=per_page,
            total=0,
            more=False,
            empty_query=parsed.empty,
        )
    vendor = default_connection.vendor
    where, params = _where(
        vendor=vendor,
        workspace_id=workspace_id,
        space_ids=space_ids,
        filters=filters,
        author_id=author_id,
    )
    source, score, newest, source_params, score_params = _matches(parsed, where, params, vendor)
    with default_connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 {source} LIMIT %s) found",
            [*source_params, RESULTS_MAX + 1],
        )
        counted = cursor.fetchone()[0]
        total = min(counted, RESULTS_MAX)
        pages = max(1, math.ceil(total / per_page))
        page = min(page, pages)
        ids: list[int] = []
        if total:
            # Ranked among the newest CANDIDATES_MAX matches: a bounded cost for common words.
            cursor.execute(
                "SELECT id FROM ("
                f"SELECT p.id AS id, p.created_at AS created_at, {score} AS score {source} "
                f"ORDER BY {newest} DESC LIMIT %s"
                ") ranked ORDER BY score, created_at DESC, id DESC LIMIT %s OFFSET %s",
                [
                    *score_params,
                    *source_params,
                    CANDIDATES_MAX,
                    per_page,
                    (page - 1) * per_page,
                ],
            )
            ids = [row[0] for row in cursor.fetchall()]
    return SearchPage(
        query=query,
        results=_results(ids, parsed),
        number=page,
        per_page=per_page,
        total=total,
        more=counted > RESULTS_MAX,
    )


def _results(ids: list[int], parsed: ParsedQuery) -> list[SearchResult]:
    """The page's posts with what a result shows, in one query."""
    if not ids:
        return []
    posts = {
        post.pk: post
        for post in Post.objects.filter(pk__in=ids).select_related(
            "thread", "thread__space", "author", "author__community"
        )
    }
    results = []
    for post_id in ids:
        post = posts.get(post_id)
        if post is None:
            continue  # deleted between the two queries
        thread: Thread = post.thread
        space: Space = thread.space
        profile = getattr(post.author, "community", None)
        results.append(
            SearchResult(
                post_id=post.pk,
                post_number=post.number,
                thread_id=thread.pk,
                thread_title=thread.title,
                space_slug=space.slug,
                space_name=space.name,
                author_handle=profile.handle if profile is not None else "",
                author_name=post.author.display_name,
                created_at=post.created_at,
                excerpt=excerpt(plain_text(post.html), parsed),
                solved=thread.accepted_post_id is not None,
                accepted=thread.accepted_post_id == post.pk,
                question=thread.kind == Thread.Kind.QUESTION,
            )
        )
    return results


# --------------------------------------------------------------------------- excerpts


def _marked_spans(text: str, parsed: ParsedQuery) -> list[tuple[int, int]]:
    """Where the query's terms appear in `text` (character ranges), by the index's rules."""
    words = set(parsed.words)
    spans: list[tuple[int, int]] = []
    for match in _TOKEN_RE.finditer(text):
        run, word = match.group(1), match.group(2)
        start = match.start()
        if word:
            # A chunk of the original text may fold into several words ("½" -> "1", "2").
            keys = [stem(w) for _r, w in _TOKEN_RE.findall(fold(word)) if w]
            if any(k in words or (parsed.prefix and k.startswith(parsed.prefix)) for k in keys):
                spans.append((start, match.end()))
            continue
        chars = [fold(char) for char in run]
        for i, char in enumerate(chars):
            if i + 1 < len(chars) and chars[i] + chars[i + 1] in words:
                spans.append((start + i, start + i + 2))
            elif char in words:
                spans.append((start + i, start + i + 1))
    merged: list[tuple[int, int]] = []
    for begin, end in spans:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def excerpt(text: str, parsed: ParsedQuery, *, length: int = EXCERPT_CHARS) -> SafeString:
    """About `length` characters of `text` around its first match, HTML-escaped, with the
    matched words wrapped in <mark>."""
    text = unicodedata.normalize("NFC", text)
    spans = _marked_spans(text, parsed)
    begin = 0
    if spans and spans[0][0] > length // 3:
        begin = spans[0][0] - length // 3
        space = text.rfind(" ", 0, begin + 1)
        begin = space + 1 if space > begin - 20 else begin
    end = min(len(text), begin + length)
    if end < len(text):
        space = text.rfind(" ", begin + length // 2, end)
        end = space if space > 0 else end
    parts: list[str] = ["…" if begin > 0 else ""]
    cursor = begin
    for span_begin, span_end in spans:
        if span_end <= begin or span_begin >= end:
            continue
        span_begin, span_end = max(span_begin, begin), min(span_end, end)
        parts.append(conditional_escape(text[cursor:span_begin]))
        parts.append(format_html("<mark>{}</mark>", text[span_begin:span_end]))
        cursor = span_end
    parts.append(conditional_escape(text[cursor:end]))
    if end < len(text):
        parts.append("…")
    # format_html escapes every piece that is not already escaped (all of the text).
    return format_html("{}" * len(parts), *parts)
