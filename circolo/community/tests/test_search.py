"""Community search: Chinese, Italian, Spanish and English found by the same rules on SQLite
and PostgreSQL; every filter; pages; nothing a viewer may not read ever shows (private
spaces, segments, sub-groups, hidden posts and threads, other workspaces, erased members);
the index follows edits, moderation, accepted answers, moves and deletions; the page's query
count does not grow with its results."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from circolo.community.models import Post, Thread
from circolo.community.search import (
    RESULTS_MAX,
    SearchFilters,
    excerpt,
    query_parse,
    search_posts,
    search_rebuild,
    terms,
)
from circolo.community.services import (
    CommunityError,
    answer_accept,
    member_for_user,
    post_edit,
    post_moderate,
    reply_create,
    space_create,
    thread_create,
)
from circolo.people.models import MemberTag
from circolo.people.privacy import member_erase
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def spaces(workspace: Any) -> dict[str, Any]:
    made = {
        "public": space_create(workspace=workspace, actor=None, name="Domande"),
        "members": space_create(workspace=workspace, actor=None, name="Club", visibility="members"),
        "vip": space_create(
            workspace=workspace,
            actor=None,
            name="VIP",
            visibility="segment",
            segment={"tags": ["vip"]},
        ),
    }
    made["lounge"] = space_create(
        workspace=workspace, actor=None, name="VIP lounge", parent=made["vip"]
    )
    made["tips"] = space_create(workspace=workspace, actor=None, name="Tips", parent=made["public"])
    return made


@pytest.fixture
def author(workspace: Any) -> Any:
    member = MemberFactory(workspace=workspace, display_name="Giulia Rossi")
    MemberTag.objects.create(workspace=workspace, member=member, tag="vip")
    return member


@pytest.fixture
def reader(workspace: Any) -> Any:
    """A signed-in member with no tags: reads public and members-only spaces."""
    return MemberFactory(workspace=workspace, display_name="Marco")


def post(space: Any, author: Any, body: str, *, title: str = "", at: int = 0, **kw: Any) -> Post:
    thread = thread_create(
        space=space,
        author=author,
        title=title or body[:40],
        body=body,
        now=T0 + dt.timedelta(minutes=at),
        **kw,
    )
    return thread.posts.get(number=1)


def found(workspace: Any, viewer: Any, query: str, **filters: Any) -> list[int]:
    page = search_posts(
        workspace_id=workspace.pk,
        viewer=viewer,
        query=query,
        filters=SearchFilters(**filters),
        per_page=50,
    )
    return [result.post_id for result in page.results]


def entries() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM community_searchdoc")
        return int(cursor.fetchone()[0])


# --------------------------------------------------------------------------- languages


def test_chinese_by_bigrams_and_single_characters(workspace, spaces, author) -> None:
    machine = post(spaces["public"], author, "我的咖啡机坏了，怎么办？", title="求助")
    tea = post(spaces["public"], author, "我喜欢喝茶", title="茶")
    assert found(workspace, None, "咖啡") == [machine.pk]
    assert found(workspace, None, "咖啡机") == [machine.pk]
    assert found(workspace, None, "咖") == [machine.pk]
    assert found(workspace, None, "喝茶") == [tea.pk]
    assert found(workspace, None, "机咖") == []
    # Full-width forms fold to the same terms.
    assert terms("ＡＢＣ") == terms("abc")


def test_italian_accents_plurals_and_prefixes(workspace, spaces, author) -> None:
    grind = post(spaces["public"], author, "La macinatura è troppo fine: perché il caffè è amaro?")
    cups = post(spaces["public"], author, "Ho comprato due tazze nuove", at=1)
    for query in ("macinatura", "macinature", "MACINATURA", "macin", "perche", "perché"):
        assert found(workspace, None, query) == [grind.pk], query
    assert found(workspace, None, "caffe") == [grind.pk]
    assert found(workspace, None, "caffè amaro") == [grind.pk]
    assert found(workspace, None, "tazza") == [cups.pk]


def test_spanish_and_english(workspace, spaces, author) -> None:
    molienda = post(spaces["public"], author, "¿Cómo ajusto la molienda para un café espresso?")
    grinders = post(spaces["public"], author, "The best burr grinders for a café at home", at=1)
    assert found(workspace, None, "moliendas") == [molienda.pk]
    assert found(workspace, None, "¿cómo?") == [molienda.pk]
    assert found(workspace, None, "como ajusto") == [molienda.pk]
    assert found(workspace, None, "grinder") == [grinders.pk]
    assert found(workspace, None, "Burr Grinders") == [grinders.pk]
    assert set(found(workspace, None, "cafe")) == {molienda.pk, grinders.pk}
    # Every word must appear.
    assert found(workspace, None, "molienda grinder") == []


def test_thread_titles_are_searched_and_weigh_more(workspace, spaces, author) -> None:
    titled = post(spaces["public"], author, "Vedi sotto, grazie", title="Moka che perde acqua")
    mentioned = post(spaces["public"], author, "Una volta avevo una moka, ora no.", at=5)
    assert found(workspace, None, "moka") == [titled.pk, mentioned.pk]


def test_relevance_then_newest_first(workspace, spaces, author) -> None:
    older = post(spaces["public"], author, "decalcificare la macchina", at=1)
    newer = post(spaces["public"], author, "decalcificare la macchina", at=2)
    strong = post(
        spaces["public"],
        author,
        "decalcificare decalcificare decalcificare",
        title="decalcificare",
        at=0,
    )
    assert found(workspace, None, "decalcificare") == [strong.pk, newer.pk, older.pk]


def test_query_rules(workspace) -> None:
    assert query_parse("  ¿?  ").empty
    assert query_parse("咖啡机").words == ("咖啡", "啡机")
    assert query_parse("perche macin").prefix == "macin"
    with pytest.raises(CommunityError) as error:
        query_parse("x" * 201)
    assert error.value.field == "q"
    with pytest.raises(CommunityError):
        query_parse(" ".join(f"word{n}" for n in range(20)))


def test_excerpt_escapes_and_marks() -> None:
    text = "<script>alert(1)</script> & la macinatura, " + "parole " * 60 + "fine"
    shown = str(excerpt(text, query_parse("macinatura")))
    assert "<script>" not in shown
    assert "&lt;script&gt;" in shown and "&amp;" in shown
    assert "<mark>macinatura</mark>" in shown
    far = "parole " * 80 + "Perché no"
    shown = str(excerpt(far, query_parse("perche")))
    assert shown.startswith("…") and "<mark>Perché</mark>" in shown
    assert "<mark>咖啡机</mark>" in str(excerpt("我的咖啡机坏了", query_parse("咖啡机")))


# --------------------------------------------------------------------------- filters


def test_filters(workspace, spaces, author, reader) -> None:
    staff = MemberFactory(workspace=workspace, display_name="Staff")
    question = thread_create(
        space=spaces["public"],
        author=author,
        title="Quale filtro?",
        body="Quale filtro per la moka?",
        kind=Thread.Kind.QUESTION,
        tags=["moka"],
        now=T0,
    )
    answer = reply_create(thread=question, author=staff, body="Il filtro originale.", now=T0)
    answer_accept(thread=question, post=answer, actor=author)
    open_question = thread_create(
        space=spaces["tips"],
        author=reader,
        title="Filtro rotto",
        body="Il mio filtro si è rotto",
        kind=Thread.Kind.QUESTION,
        now=T0 + dt.timedelta(days=10),
    )
    chat = post(spaces["members"], reader, "Parliamo di filtro e di caffè", at=60 * 24 * 20)
    everything = set(found(workspace, reader, "filtro"))
    assert len(everything) == 4

    first, opened = question.posts.get(number=1).pk, open_question.posts.get(number=1).pk
    assert set(found(workspace, reader, "filtro", space="domande")) == {first, answer.pk, opened}
    assert found(workspace, reader, "filtro", space="tips") == [opened]
    assert set(found(workspace, reader, "filtro", tag="moka")) == {first, answer.pk}
    assert set(found(workspace, reader, "filtro", solved="yes")) == {first, answer.pk}
    assert found(workspace, reader, "filtro", solved="no") == [opened]
    handle = reader.community.handle
    assert set(found(workspace, reader, "filtro", author=handle)) == {opened, chat.pk}
    assert set(found(workspace, reader, "filtro", author=handle.upper())) == {opened, chat.pk}
    day = T0.date()
    assert set(found(workspace, reader, "filtro", before=day)) == {first, answer.pk}
    assert set(found(workspace, reader, "filtro", after=day + dt.timedelta(days=1))) == {
        opened,
        chat.pk,
    }
    assert found(
        workspace,
        reader,
        "filtro",
        after=day + dt.timedelta(days=10),
        before=day + dt.timedelta(days=10),
    ) == [opened]


def test_bad_filters_are_400_with_a_message(client, workspace, spaces, author) -> None:
    post(spaces["vip"], author, "segreto")
    url = f"/c/{workspace.slug}/search/"
    cases = {
        "solved=maybe": "solved",
        "after=31/12/2026": "after",
        "after=2026-03-10&before=2026-03-01": "before",
        "author=@nobody": "author",
        "space=no-such-space": "space",
        "space=vip": "space",  # exists, but this visitor may not read it: the same answer
        "page=abc": "page",
        "page=0": "page",
        "tag=" + "x" * 80: "tag",
        "q=" + "x" * 201: "q",
    }
    for query, field in cases.items():
        response = client.get(f"{url}?q=segreto&{query}")
        assert response.status_code == 400, query
        assert f'data-error="{field}"' in response.content.decode(), query
    unknown = client.get(f"{url}?q=segreto&space=no-such-space").content.decode()
    hidden = client.get(f"{url}?q=segreto&space=vip").content.decode()
    assert (
        unknown.split('data-error="space">')[1].split("<")[0]
        == (hidden.split('data-error="space">')[1].split("<")[0])
    )


# --------------------------------------------------------------------------- pages


def test_pages(workspace, spaces, author) -> None:
    made = [post(spaces["public"], author, "ricetta del tiramisù", at=n) for n in range(25)]
    first = search_posts(workspace_id=workspace.pk, viewer=None, query="tiramisu", per_page=20)
    assert first.total == 25 and first.num_pages == 2 and first.has_next
    assert [r.post_id for r in first.results] == [p.pk for p in reversed(made)][:20]
    second = search_posts(
        workspace_id=workspace.pk, viewer=None, query="tiramisu", page=2, per_page=20
    )
    assert [r.post_id for r in second.results] == [p.pk for p in reversed(made)][20:]
    assert not second.has_next and second.has_previous
    beyond = search_posts(
        workspace_id=workspace.pk, viewer=None, query="tiramisu", page=9, per_page=20
    )
    assert beyond.number == 2


def test_page_renders_results_empty_states_and_404(client, workspace, spaces, author) -> None:
    url = f"/c/{workspace.slug}/search/"
    empty = client.get(url)
    assert empty.status_code == 200 and 'data-empty="query"' in empty.content.decode()
    punctuation = client.get(url, {"q": "¿?!"})
    assert 'data-empty="query"' in punctuation.content.decode()
    post(spaces["public"], author, "Come pulire la <b>moka</b> & il filtro", title="Pulizia")
    page = client.get(url, {"q": "moka"}).content.decode()
    assert "<mark>moka</mark>" in page and "<b>" not in page and "Pulizia" in page
    assert f"@{author.community.handle}" in page and "Domande" in page
    none = client.get(url, {"q": "zabaione"})
    assert none.status_code == 200 and 'data-empty="results"' in none.content.decode()
    assert client.get("/c/no-such-community/search/", {"q": "moka"}).status_code == 404
    home = client.get(f"/c/{workspace.slug}/").content.decode()
    assert 'id="community-search"' in home
    space = client.get(f"/c/{workspace.slug}/s/domande/").content.decode()
    assert 'name="space" value="domande"' in space


def test_page_links_keep_the_filters(client, workspace, spaces, author) -> None:
    for n in range(25):
        post(spaces["public"], author, "ricetta del tiramisù", at=n)
    page = client.get(f"/c/{workspace.slug}/search/", {"q": "tiramisu", "space": "domande"})
    text = page.content.decode()
    assert "page=2" in text and "space=domande" in text.split('rel="next"')[0].split("<a ")[-1]


def test_query_count_does_not_grow_with_results(
    client, workspace, spaces, author, django_assert_max_num_queries
) -> None:
    url = f"/c/{workspace.slug}/search/"
    post(spaces["public"], author, "espresso perfetto")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url, {"q": "espresso"}).status_code == 200
    for n in range(30):
        someone = MemberFactory(workspace=workspace)
        post(spaces["public"], someone, f"espresso numero {n}", at=n + 1)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url, {"q": "espresso"})
    assert response.content.decode().count("<mark>espresso</mark>") == 20


# --------------------------------------------------------------------------- no leaks


def test_private_spaces_segments_and_subgroups_never_leak(
    workspace, spaces, author, reader
) -> None:
    public = post(spaces["public"], author, "zucchero di canna")
    club = post(spaces["members"], author, "zucchero nel club", at=1)
    vip = post(spaces["vip"], author, "zucchero per pochi", at=2)
    lounge = post(spaces["lounge"], author, "zucchero nel salotto", at=3)
    assert found(workspace, None, "zucchero") == [public.pk]
    assert set(found(workspace, reader, "zucchero")) == {public.pk, club.pk}
    assert set(found(workspace, author, "zucchero")) == {public.pk, club.pk, vip.pk, lounge.pk}
    for slug in ("vip", "lounge", "club"):
        with pytest.raises(CommunityError) as error:
            found(workspace, None, "zucchero", space=slug)
        assert error.value.field == "space"
    assert found(workspace, author, "zucchero", space="vip") == [lounge.pk, vip.pk]


def test_other_workspaces_never_leak(
    client, workspace, other_workspace, spaces, author, outsider
) -> None:
    mine = post(spaces["public"], author, "biscotti al burro")
    secret = post(spaces["vip"], author, "biscotti segreti", at=1)
    theirs_space = space_create(workspace=other_workspace, actor=None, name="Altro")
    theirs = post(theirs_space, MemberFactory(workspace=other_workspace), "biscotti al burro")
    assert found(workspace, None, "biscotti") == [mine.pk]
    assert found(other_workspace, None, "biscotti") == [theirs.pk]
    # The owner of the other workspace, signed in here, is a plain member of this one.
    text = outsider.client.get(f"/c/{workspace.slug}/search/", {"q": "biscotti"}).content.decode()
    assert f'data-post="{mine.pk}"' in text
    assert f'data-post="{secret.pk}"' not in text and f'data-post="{theirs.pk}"' not in text
    response = outsider.client.get(
        f"/c/{workspace.slug}/search/", {"q": "biscotti", "space": "vip"}
    )
    assert response.status_code == 400 and "segreti" not in response.content.decode()
    own = outsider.client.get(f"/c/{other_workspace.slug}/search/", {"q": "biscotti"})
    assert f'data-post="{theirs.pk}"' in own.content.decode()
    assert f'data-post="{mine.pk}"' not in own.content.decode()


def test_hidden_posts_and_threads_never_show_even_to_staff(
    workspace, spaces, author, moderator
) -> None:
    staff = member_for_user(workspace=workspace, user=moderator.user)
    shown = post(spaces["public"], author, "cannella in polvere")
    flagged = reply_create(thread=shown.thread, author=author, body="cannella spam", now=T0)
    held = post(spaces["public"], author, "cannella in attesa", at=1)
    Thread.objects.filter(pk=held.thread_id).update(hidden_at=T0)
    assert set(found(workspace, staff, "cannella")) == {flagged.pk, shown.pk}
    post_moderate(post=flagged, moderator=staff, action="hide", reason="spam")
    assert found(workspace, staff, "cannella") == [shown.pk]
    assert found(workspace, None, "spam") == []
    post_moderate(post=flagged, moderator=staff, action="show")
    assert set(found(workspace, None, "cannella")) == {flagged.pk, shown.pk}


def test_erased_members_are_not_found(workspace, spaces, author, owner) -> None:
    kept = post(spaces["public"], MemberFactory(workspace=workspace), "pistacchio di Bronte")
    gone = post(spaces["public"], author, "pistacchio, firmato Giulia Rossi", at=1)
    handle = author.community.handle
    assert set(found(workspace, None, "pistacchio")) == {kept.pk, gone.pk}
    member_erase(member=author, actor=owner.user, reason="request")
    assert found(workspace, None, "pistacchio") == [kept.pk]
    assert found(workspace, None, "giulia") == []
    with pytest.raises(CommunityError):
        found(workspace, None, "pistacchio", author=handle)
    search_rebuild(workspace_id=workspace.pk)
    assert found(workspace, None, "pistacchio") == [kept.pk]


# --------------------------------------------------------------------------- keeping up


def test_edits_accepts_moves_and_deletes_follow(workspace, spaces, author, reader) -> None:
    first = post(
        spaces["public"], author, "lievito madre", title="Domanda", kind=Thread.Kind.QUESTION
    )
    post_edit(post=first, editor=author, body="pasta madre")
    assert found(workspace, None, "lievito") == []
    assert found(workspace, None, "pasta madre") == [first.pk]

    answer = reply_create(thread=first.thread, author=reader, body="pasta con farina", now=T0)
    assert set(found(workspace, None, "pasta", solved="no")) == {first.pk, answer.pk}
    answer_accept(thread=first.thread, post=answer, actor=author)
    assert found(workspace, None, "pasta", solved="no") == []
    assert set(found(workspace, None, "pasta", solved="yes")) == {first.pk, answer.pk}

    # Moved to a space visitors may not read: gone for them at once.
    Thread.objects.filter(pk=first.thread_id).update(space=spaces["members"])
    assert found(workspace, None, "pasta") == []
    assert set(found(workspace, reader, "pasta", space="club")) == {first.pk, answer.pk}

    assert entries() == 2
    Thread.objects.filter(pk=first.thread_id).delete()
    assert entries() == 0
    assert found(workspace, reader, "pasta") == []


def test_rebuild_is_idempotent_and_the_command_works(workspace, spaces, author) -> None:
    made = [post(spaces["public"], author, f"olio extravergine {n}", at=n) for n in range(5)]
    before = found(workspace, None, "olio")
    assert search_rebuild(workspace_id=workspace.pk) == 5
    assert search_rebuild() == 5
    assert entries() == 5
    assert found(workspace, None, "olio") == before == [p.pk for p in reversed(made)]
    call_command("community_reindex", "--workspace", workspace.slug, verbosity=0)
    assert found(workspace, None, "olio") == before
    with pytest.raises(CommandError):
        call_command("community_reindex", "--workspace", "no-such-workspace")


def test_results_stop_counting_at_the_cap(workspace, spaces, author, monkeypatch) -> None:
    from circolo.community import search

    monkeypatch.setattr(search, "RESULTS_MAX", 3)
    for n in range(5):
        post(spaces["public"], author, "limone", at=n)
    page = search_posts(workspace_id=workspace.pk, viewer=None, query="limone", per_page=2)
    assert page.total == 3 and page.more and page.num_pages == 2
    assert RESULTS_MAX == 1000
