"""Community search at 1,000,000 posts: index build rate and query times, against a scan.

    python bench/bench_community_search.py                    # SQLite, 1,000,000 posts
    python bench/bench_community_search.py --db postgres      # PostgreSQL
    python bench/bench_community_search.py --posts 100000     # a quicker run

Each run makes a fresh database (SQLite: a file in a temporary folder; PostgreSQL: the
database `circolo_bench_search`, created and dropped here, server from BENCH_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432), migrates it and fills one workspace straight
into the tables with bulk inserts (not through the services): members and their profiles,
spaces in Italian, Spanish, English and Chinese (plus a segment space visitors may not
read), threads of about eight posts, some of them solved questions. Post texts draw words
from per-language vocabularies (real words, then a long tail of made-up ones) with Zipf
frequencies, so there are common and rare words as in a real forum. The index is then built
by the bulk rebuild path (search.search_rebuild, as `circolo community_reindex` does).

Then a visitor's searches through search.search_posts (first page, 20 results, total
counted up to RESULTS_MAX) are timed per query type: a common word, a rare word, Chinese,
two words, and a common word with a space and a "solved" filter (p50 / p99 by nearest rank,
over --runs queries cycling through each type's words). The baseline, measured in the same
run, answers the same queries the naive way: a case-insensitive substring scan of the posts
(ICONTAINS on each word, newest first, with a count), which is what search would cost
without the index (and it still misses accents, plurals and word boundaries).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import configure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "circolo_bench_search"
POSTS_PER_THREAD = 8
MEMBERS = 5_000
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _words(text: str) -> list[str]:
    return text.split()


REAL_WORDS = {
    "it": _words(
        "il la di che e un una per non con caffè macchina moka filtro acqua macinatura "
        "perché come tazza latte crema espresso gusto amaro dolce grani tostatura pressione "
        "temperatura consiglio problema guarnizione pulizia calcare decalcificare capsule "
        "miscela arabica robusta aroma schiuma montalatte caldaia valvola manutenzione"
    ),
    "es": _words(
        "el la de que y un una para no con café cafetera molienda agua cómo por qué taza "
        "leche crema espresso sabor amargo dulce granos tostado presión temperatura consejo "
        "problema junta limpieza cal descalcificar cápsulas mezcla arábica aroma espuma "
        "caldera válvula mantenimiento filtro"
    ),
    "en": _words(
        "the a of that and to for not with coffee machine grinder burr filter water grind "
        "why how cup milk crema espresso taste bitter sweet beans roast pressure temperature "
        "advice problem gasket cleaning scale descale capsules blend arabica aroma foam "
        "frother boiler valve maintenance"
    ),
}
CHINESE_WORDS = _words(
    "咖啡 咖啡机 磨豆机 牛奶 奶泡 浓缩 拿铁 水温 压力 研磨 粗细 味道 苦味 清洗 除垢 "
    "滤网 胶囊 豆子 烘焙 香气 问题 建议 怎么 为什么 我们 今天 喜欢 觉得 一杯 早上"
)
# Two-letter syllables the made-up words of the long tail are built from.
SYLLABLES = [consonant + vowel for consonant in "bcdflmnprstvz" for vowel in "aeiou"]
HAN = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切照妈哥议"  # noqa: E501


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def vocabulary(language: str, rng: random.Random, size: int) -> list[str]:
    """Real words first (the most frequent), then made-up ones for the long tail."""
    if language == "zh":
        words = list(CHINESE_WORDS)
        seen = set(words)
        while len(words) < size:
            word = "".join(rng.choices(HAN, k=rng.choice((2, 2, 3))))
            if word not in seen:
                seen.add(word)
                words.append(word)
        return words
    words = list(REAL_WORDS[language])
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def fill(*, posts: int, seed: int) -> tuple[Any, dict[str, list[str]], float]:
    """A workspace filled with bulk inserts; returns it, the vocabularies and the seconds."""
    from django.db import transaction
    from tqdm import tqdm

    from circolo.community.models import CommunityProfile, Post, Space, Thread
    from circolo.core.models import Workspace
    from circolo.people.models import Member

    started = time.perf_counter()
    rng = random.Random(seed)
    workspace = Workspace.objects.create(name="Bottega Bench", slug="bench")
    members = Member.objects.bulk_create(
        [Member(workspace=workspace, display_name=f"Member {n}") for n in range(MEMBERS)],
        batch_size=5000,
    )
    CommunityProfile.objects.bulk_create(
        [
            CommunityProfile(workspace=workspace, member=member, handle=f"member{n}")
            for n, member in enumerate(members)
        ],
        batch_size=5000,
    )
    languages = ("it", "es", "en", "zh")
    spaces = {
        language: Space.objects.create(
            workspace=workspace, slug=f"space-{language}", name=f"Space {language}"
        )
        for language in languages
    }
    secret = Space.objects.create(
        workspace=workspace,
        slug="vip",
        name="VIP",
        visibility=Space.Visibility.SEGMENT,
        segment={"tags": ["vip"]},
    )
    vocab = {language: vocabulary(language, rng, 20_000) for language in languages}
    # Zipf weights (s = 1.1) over each vocabulary's ranks.
    cumulative = list(itertools.accumulate(1 / (rank**1.1) for rank in range(1, 20_001)))

    def text(language: str, words: int) -> str:
        chosen = rng.choices(vocab[language], cum_weights=cumulative, k=words)
        return ("" if language == "zh" else " ").join(chosen)

    threads_total = max(1, posts // POSTS_PER_THREAD)
    bar = tqdm(total=posts, desc="posts", unit="", file=sys.stderr)
    made = 0
    chunk_threads = 2000
    for first in range(0, threads_total, chunk_threads):
        count = min(chunk_threads, threads_total - first)
        with transaction.atomic():
            threads = []
            for n in range(first, first + count):
                language = languages[n % 4]
                moment = T0 + dt.timedelta(minutes=n * 3)
                threads.append(
                    Thread(
                        workspace=workspace,
                        space=secret if n % 50 == 0 else spaces[language],
                        author=members[rng.randrange(MEMBERS)],
                        kind=Thread.Kind.QUESTION if n % 3 == 0 else Thread.Kind.DISCUSSION,
                        title=text(language, rng.randint(3, 8))[:200],
                        tags=[language],
                        language=language,
                        created_at=moment,
                        last_posted_at=moment,
                    )
                )
            Thread.objects.bulk_create(threads, batch_size=2000)
            rows = []
            for n, thread in enumerate(threads, start=first):
                per_thread = (
                    POSTS_PER_THREAD if n < threads_total - 1 else max(1, posts - made - len(rows))
                )
                for number in range(1, per_thread + 1):
                    body = text(thread.language, rng.randint(15, 60))
                    rows.append(
                        Post(
                            workspace=workspace,
                            thread=thread,
                            author=members[rng.randrange(MEMBERS)],
                            number=number,
                            body=body,
                            html=f"<p>{body}</p>",
                            created_at=thread.created_at + dt.timedelta(minutes=number),
                        )
                    )
            Post.objects.bulk_create(rows, batch_size=5000)
            solved = [
                Thread(pk=thread.pk, accepted_post_id=None, reply_count=POSTS_PER_THREAD - 1)
                for thread in threads
            ]
            Thread.objects.bulk_update(solved, ["reply_count"], batch_size=2000)
            # Half of the questions have an accepted answer (their second post).
            question_ids = [t.pk for i, t in enumerate(threads, start=first) if i % 6 == 0]
            seconds = dict(
                Post.objects.filter(thread_id__in=question_ids, number=2).values_list(
                    "thread_id", "pk"
                )
            )
            Thread.objects.bulk_update(
                [Thread(pk=k, accepted_post_id=v) for k, v in seconds.items()],
                ["accepted_post"],
                batch_size=2000,
            )
        made += len(rows)
        bar.update(len(rows))
    bar.close()
    return workspace, vocab, time.perf_counter() - started


def query_sets(vocab: dict[str, list[str]]) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each query type: its queries, and the filters it adds."""
    return {
        "common word": (
            ["caffè", "coffee", "café", "espresso", "filtro", "machine", "leche", "acqua"],
            {},
        ),
        "rare word": (
            [vocab[lang][rank] for lang in ("it", "es", "en") for rank in (5000, 12000)],
            {},
        ),
        "Chinese": (["咖啡机", "磨豆机", "奶泡", "除垢", "咖啡", "浓缩"], {}),
        "two words": (
            ["macchina caffè", "coffee grinder", "molienda café", "moka filtro", "milk foam"],
            {},
        ),
        "common word + space + solved": (
            ["caffè", "espresso", "acqua", "filtro"],
            {"space": "space-it", "solved": "yes"},
        ),
    }


def time_queries(
    run: Callable[[str, dict[str, str]], int],
    queries: list[str],
    filters: dict[str, str],
    runs: int,
) -> tuple[list[float], list[int]]:
    for query in queries:
        run(query, filters)  # warm
    samples, totals = [], []
    for query in itertools.islice(itertools.cycle(queries), runs):
        started = time.perf_counter()
        totals.append(run(query, filters))
        samples.append((time.perf_counter() - started) * 1000)
    return samples, totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40, help="timed searches per query type")
    parser.add_argument("--baseline-runs", type=int, default=5, help="timed scans per type")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    cleanup = configure(args.db, database=BENCH_DB, prefix="circolo-bench-search-")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from circolo.community.models import Post
        from circolo.community.search import (
            SearchFilters,
            search_filters_parse,
            search_posts,
            search_rebuild,
        )
        from circolo.community.selectors import readable_spaces

        call_command("migrate", verbosity=0)
        workspace, vocab, fill_seconds = fill(posts=args.posts, seed=args.seed)
        stored = Post.objects.filter(workspace=workspace).count()
        started = time.perf_counter()
        indexed = search_rebuild(workspace_id=workspace.pk)
        index_seconds = time.perf_counter() - started
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        def search(query: str, filters: dict[str, str]) -> int:
            page = search_posts(
                workspace_id=workspace.pk,
                viewer=None,
                query=query,
                filters=search_filters_parse(filters) if filters else SearchFilters(),
            )
            return page.total

        def scan(query: str, filters: dict[str, str]) -> int:
            spaces = readable_spaces(workspace.pk, None)
            if filters.get("space"):
                spaces = [s for s in spaces if s.slug == filters["space"]]
            posts = Post.objects.filter(
                workspace=workspace,
                hidden_at__isnull=True,
                thread__hidden_at__isnull=True,
                thread__space__in=spaces,
            )
            if filters.get("solved") == "yes":
                posts = posts.filter(thread__kind="question", thread__accepted_post__isnull=False)
            for word in query.split():
                posts = posts.filter(body__icontains=word)
            list(posts.order_by("-created_at").values_list("pk", flat=True)[:20])
            return posts.count()

        rows = []
        for name, (queries, filters) in query_sets(vocab).items():
            samples, totals = time_queries(search, queries, filters, args.runs)
            scans, scan_totals = time_queries(scan, queries, filters, args.baseline_runs)
            rows.append((name, samples, totals, scans, scan_totals))

        vendor = connection.vendor
        if vendor == "sqlite":
            version = connection.Database.sqlite_version
        else:
            number = connection.pg_version
            version = f"{number // 10000}.{number % 10000}"
        print()
        print(
            f"Community search, {vendor} {version}, {stored:,} posts in "
            f"{stored // POSTS_PER_THREAD:,} threads; data generated in {fill_seconds:.0f} s; "
            f"index built in {index_seconds:.1f} s ({indexed / index_seconds:,.0f} posts/s)."
        )
        print()
        print(
            "| Query type | Runs | p50 ms | p99 ms | median matches | "
            "baseline p50 ms | baseline p99 ms |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, samples, totals, scans, _scan_totals in rows:
            print(
                f"| {name} | {len(samples)} | {statistics.median(samples):.1f} "
                f"| {percentile(samples, 99):.1f} | {statistics.median(totals):,.0f} "
                f"| {statistics.median(scans):.1f} | {percentile(scans, 99):.1f} |"
            )
        print()
        print(
            "Matches are counted up to RESULTS_MAX (1,000); the baseline is a case-insensitive "
            "substring scan (ICONTAINS per word) with its count, newest first."
        )
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
