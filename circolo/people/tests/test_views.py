"""Member list, CSV export and member profile pages: permissions, filters, merges, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.http import QueryDict
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from circolo.activity.models import Activity
from circolo.activity.scores import LEVELS
from circolo.activity.services import ActivityIn, activity_record_bulk
from circolo.people.forms import SORT_KEYS, MemberFilterForm
from circolo.people.models import (
    Identity,
    IdentityKind,
    Member,
    MemberTag,
    MergeRecord,
    MergeSuggestion,
)
from circolo.people.services import member_merge
from circolo.testing.factories import IdentityFactory, MemberFactory
from circolo.testing.people_factories import MemberTagFactory, MergeSuggestionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stranger(outsider: Any, settings: Any) -> Any:
    """The outsider persona (an owner elsewhere) without the MFA prompt owners get."""
    settings.CIRCOLO_MFA_ENFORCE = False
    return outsider


@pytest.fixture(autouse=True)
def handlers_in_process(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True


def ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


def record(workspace: Any, member: Member, *, n: int, days_ago: float = 1, kind: str = "post"):
    """Record n activities through the bulk path and run the handlers (rollups, scores)."""
    items = [
        ActivityIn(
            member_id=member.pk,
            kind=kind,
            channel="community",
            occurred_at=ago(days_ago) - dt.timedelta(minutes=i),
            source="test",
            source_id=f"{member.pk}-{kind}-{days_ago}-{i}",
            properties={"title": f"Thread {i}", "lang": "it"},
        )
        for i in range(n)
    ]
    with TestCase.captureOnCommitCallbacks(execute=True):
        activity_record_bulk(workspace=workspace, items=items)


def person(workspace: Any, name: str, *, email: str = "", handle: str = "", **fields: Any):
    member = MemberFactory(workspace=workspace, display_name=name, **fields)
    if email:
        IdentityFactory(member=member, kind=IdentityKind.EMAIL, channel="email", value=email)
    if handle:
        IdentityFactory(
            member=member, kind=IdentityKind.HANDLE, channel="forum", value=handle, verified=False
        )
    return member


@pytest.fixture
def community(workspace: Any) -> dict[str, Member]:
    """Four members of `workspace`: a busy champion, a casual one, a quiet one and a twin."""
    anna = person(workspace, "Anna Bianchi", email="anna@example.com", handle="annab")
    bruno = person(workspace, "Bruno Verdi", email="bruno@example.com")
    chen = person(workspace, "陈静", email="chen@example.cn", first_seen=ago(400))
    anna2 = person(workspace, "Anna B.", email="anna.b@example.org")
    record(workspace, anna, n=60, days_ago=2)
    record(workspace, bruno, n=1, days_ago=20)
    record(workspace, anna2, n=3, days_ago=50, kind="order")
    MemberTagFactory(member=anna, tag="vip")
    MemberTagFactory(member=chen, tag="wholesale")
    MergeSuggestionFactory(member_a=anna, member_b=anna2, score=0.9)
    return {"anna": anna, "bruno": bruno, "chen": chen, "anna2": anna2}


def list_url(workspace: Any) -> str:
    return reverse("people:member_list", kwargs={"slug": workspace.slug})


def detail_url(member: Member, slug: str | None = None) -> str:
    return reverse(
        "people:member_detail",
        kwargs={"slug": slug or member.workspace.slug, "member_id": member.pk},
    )


def names(response: Any) -> list[str]:
    return [row.member.display_name for row in response.context["rows"]]


# --------------------------------------------------------------------------- member list


class TestMemberListAccess:
    def test_staff_roles_see_the_list(self, moderator, analyst, community):
        for persona in (moderator, analyst):
            response = persona.client.get(list_url(persona.workspace))
            assert response.status_code == 200
            assert "Anna Bianchi" in response.content.decode()

    def test_owner_sees_the_list(self, owner, community, settings):
        settings.CIRCOLO_MFA_ENFORCE = False
        assert owner.client.get(list_url(owner.workspace)).status_code == 200

    def test_community_member_role_is_forbidden(self, member_user, community):
        assert member_user.client.get(list_url(member_user.workspace)).status_code == 403

    def test_outsider_gets_404(self, stranger, workspace, community):
        response = stranger.client.get(list_url(workspace))
        assert response.status_code == 404
        assert "Anna" not in response.content.decode()

    def test_anonymous_is_sent_to_sign_in(self, workspace):
        response = Client().get(list_url(workspace))
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


class TestMemberListFilters:
    def test_default_sort_is_love_descending(self, moderator, community):
        response = moderator.client.get(list_url(moderator.workspace))
        assert names(response)[0] == "Anna Bianchi"
        assert set(names(response)) == {"Anna Bianchi", "Bruno Verdi", "陈静", "Anna B."}

    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            ("bianchi", {"Anna Bianchi"}),
            ("anna", {"Anna Bianchi", "Anna B."}),
            ("bruno@example.com", {"Bruno Verdi"}),
            ("annab", {"Anna Bianchi"}),
            ("陈", {"陈静"}),
            ("nobody-like-this", set()),
        ],
    )
    def test_search_name_email_handle(self, moderator, community, q, expected):
        response = moderator.client.get(list_url(moderator.workspace), {"q": q})
        assert set(names(response)) == expected

    def test_filter_by_tag(self, moderator, community):
        response = moderator.client.get(list_url(moderator.workspace), {"tag": "vip"})
        assert names(response) == ["Anna Bianchi"]

    def test_filter_by_level(self, moderator, community):
        response = moderator.client.get(list_url(moderator.workspace), {"level": "inactive"})
        assert "陈静" in names(response)
        assert "Anna Bianchi" not in names(response)
        top = moderator.client.get(list_url(moderator.workspace), {"level": "champion"})
        assert names(top) == ["Anna Bianchi"]

    @pytest.mark.parametrize(
        ("active", "expected"),
        [
            ("7", {"Anna Bianchi"}),
            ("30", {"Anna Bianchi", "Bruno Verdi"}),
            ("90", {"Anna Bianchi", "Bruno Verdi", "Anna B."}),
            ("never", {"陈静"}),
        ],
    )
    def test_filter_by_last_active(self, moderator, community, active, expected):
        response = moderator.client.get(list_url(moderator.workspace), {"active": active})
        assert set(names(response)) == expected

    def test_filter_pending_merge_suggestions(self, moderator, community):
        response = moderator.client.get(list_url(moderator.workspace), {"pending": "1"})
        assert set(names(response)) == {"Anna Bianchi", "Anna B."}
        rows = response.context["rows"]
        assert all(row.pending_merge for row in rows)
        assert "pending merge suggestion" in response.content.decode()

    @pytest.mark.parametrize(
        ("sort", "first"),
        [("name", "Anna B."), ("-name", "陈静"), ("first_seen", "陈静"), ("love", "Bruno Verdi")],
    )
    def test_sort(self, moderator, community, sort, first):
        response = moderator.client.get(list_url(moderator.workspace), {"sort": sort})
        assert names(response)[0] == first

    def test_sort_headers_toggle_direction(self, moderator, community):
        response = moderator.client.get(list_url(moderator.workspace), {"sort": "name"})
        header = response.context["headers"]["name"]
        assert header.direction == "ascending"
        assert "sort=-name" in header.query
        assert 'aria-sort="ascending"' in response.content.decode()

    @pytest.mark.parametrize(
        "params",
        [
            {"sort": "password"},
            {"level": "emperor"},
            {"active": "yesterday"},
            {"tag": "no-such-tag"},
            {"page": "abc"},
            {"page": "999"},
            {"q": "x" * 500},
        ],
    )
    def test_bad_input_falls_back_to_defaults(self, moderator, community, params):
        response = moderator.client.get(list_url(moderator.workspace), params)
        assert response.status_code == 200
        filters = response.context["filters"]
        if "sort" in params:
            assert filters.sort == "-love"
            assert names(response)[0] == "Anna Bianchi"
        if "level" in params:
            assert filters.level == ""
            assert len(names(response)) == 4

    def test_pagination_50_per_page(self, moderator, workspace):
        for i in range(55):
            MemberFactory(workspace=workspace, display_name=f"Person {i:02d}")
        first = moderator.client.get(list_url(workspace), {"sort": "name"})
        assert len(first.context["rows"]) == 50
        assert first.context["page"].paginator.num_pages == 2
        second = moderator.client.get(list_url(workspace), {"sort": "name", "page": "2"})
        assert names(second) == [f"Person {i:02d}" for i in range(50, 55)]
        assert "sort=name&amp;page=1" in second.content.decode()

    def test_htmx_search_returns_the_results_only(self, moderator, community):
        response = moderator.client.get(
            list_url(moderator.workspace), {"q": "bruno"}, headers={"HX-Request": "true"}
        )
        body = response.content.decode()
        assert response.status_code == 200
        assert 'id="member-results"' in body
        assert "<html" not in body
        assert "Bruno Verdi" in body and "Anna Bianchi" not in body
        assert "HX-Request" in response["Vary"]
        full = moderator.client.get(list_url(moderator.workspace), {"q": "bruno"})
        assert "<html" in full.content.decode()
        assert 'hx-trigger="keyup changed delay:300ms' in full.content.decode()

    def test_empty_workspace_explains_how_to_add_members(self, moderator):
        body = moderator.client.get(list_url(moderator.workspace)).content.decode()
        assert "/api/v1/docs" in body
        assert "circolo demo" in body

    def test_no_match_says_so(self, moderator, community):
        body = moderator.client.get(list_url(moderator.workspace), {"q": "zzz"}).content.decode()
        assert "No member matches these filters." in body

    def test_export_link_only_for_exporters(self, moderator, analyst, community):
        export = reverse("people:member_export", kwargs={"slug": analyst.workspace.slug})
        body = analyst.client.get(list_url(analyst.workspace), {"tag": "vip"}).content.decode()
        assert f"{export}?tag=vip" in body
        assert export not in moderator.client.get(list_url(moderator.workspace)).content.decode()

    def test_query_count_does_not_grow_with_the_page(
        self, moderator, workspace, django_assert_max_num_queries
    ):
        def count() -> int:
            with CaptureQueriesContext(connection) as queries:
                response = moderator.client.get(list_url(workspace))
            assert response.status_code == 200
            return len(queries)

        def add(n: int, start: int) -> None:
            for i in range(start, start + n):
                member = person(workspace, f"P{i}", email=f"p{i}@example.com", handle=f"p{i}")
                MemberTagFactory(member=member, tag=f"t{i % 3}")
                MemberTagFactory(member=member, tag="all")
                if i % 2:
                    MergeSuggestionFactory(
                        member_a=member, member_b=MemberFactory(workspace=workspace)
                    )

        add(3, 0)
        small = count()
        add(60, 3)
        large = count()
        assert small == large
        with django_assert_max_num_queries(14):
            moderator.client.get(list_url(workspace))


# --------------------------------------------------------------------------- CSV export


def export(persona: Any, **params: str) -> Any:
    url = reverse("people:member_export", kwargs={"slug": persona.workspace.slug})
    return persona.client.get(url, params)


def csv_rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


class TestMemberExport:
    def test_analyst_exports_the_filtered_list(self, analyst, community):
        response = export(analyst, active="30")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = csv_rows(response)
        listed = analyst.client.get(list_url(analyst.workspace), {"active": "30"})
        assert [row["display_name"] for row in rows] == names(listed)
        assert {row["emails"] for row in rows} == {"anna@example.com", "bruno@example.com"}

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"q": "anna"},
            {"tag": "vip"},
            {"level": "inactive"},
            {"active": "never"},
            {"pending": "1"},
            {"sort": "name"},
            {"sort": "nonsense", "level": "nonsense"},
        ],
    )
    def test_export_matches_the_list_for_every_filter(self, analyst, community, params):
        rows = csv_rows(export(analyst, **params))
        listed = analyst.client.get(list_url(analyst.workspace), params)
        assert [int(row["id"]) for row in rows] == [r.member.pk for r in listed.context["rows"]]

    def test_unicode_names_survive(self, analyst, community):
        rows = csv_rows(export(analyst, q="陈"))
        assert rows[0]["display_name"] == "陈静"

    def test_moderator_and_member_cannot_export(self, moderator, member_user, community):
        assert export(moderator).status_code == 403
        assert export(member_user).status_code == 403

    def test_outsider_gets_404(self, stranger, workspace, community):
        url = reverse("people:member_export", kwargs={"slug": workspace.slug})
        assert stranger.client.get(url).status_code == 404

    def test_owner_exports(self, owner, community, settings):
        settings.CIRCOLO_MFA_ENFORCE = False
        assert len(csv_rows(export(owner))) == 4


# --------------------------------------------------------------------------- member profile


class TestMemberDetail:
    def test_profile_shows_identities_score_tags_timeline_and_suggestions(
        self, moderator, community
    ):
        anna = community["anna"]
        response = moderator.client.get(detail_url(anna))
        assert response.status_code == 200
        body = response.content.decode()
        assert "anna@example.com" in body and "annab" in body
        assert "verified" in body
        assert response.context["score"].activity_count == 60
        assert response.context["score"].level == "champion"
        assert "vip" in body
        assert len(response.context["items"]) == 50
        assert "Thread 0" in body
        suggestion = response.context["suggestions"][0]
        assert suggestion.other == community["anna2"]
        assert suggestion.score_percent == 90
        assert suggestion.reasons[0][0] == "Same email address"
        assert "Merge Anna B. into Anna Bianchi" in body

    @pytest.mark.parametrize("persona", ["analyst", "owner"])
    def test_read_only_and_owner_views(self, request, persona, community, settings):
        settings.CIRCOLO_MFA_ENFORCE = False
        user = request.getfixturevalue(persona)
        response = user.client.get(detail_url(community["anna"]))
        assert response.status_code == 200
        has_buttons = 'data-action="accept"' in response.content.decode()
        assert has_buttons == (persona == "owner")

    def test_member_role_forbidden_and_outsider_404(self, member_user, stranger, community):
        anna = community["anna"]
        assert member_user.client.get(detail_url(anna)).status_code == 403
        assert stranger.client.get(detail_url(anna)).status_code == 404
        # Nor through the stranger's own workspace address.
        own = detail_url(anna, slug=stranger.workspace.slug)
        assert stranger.client.get(own).status_code == 404

    def test_bad_ids_are_404(self, moderator, community):
        base = list_url(moderator.workspace)
        assert moderator.client.get(f"{base}abc/").status_code == 404
        assert moderator.client.get(f"{base}99999999/").status_code == 404
        assert moderator.client.get(f"{base}-1/").status_code == 404

    def test_timeline_loads_more_with_htmx(self, moderator, community):
        anna = community["anna"]
        first = moderator.client.get(detail_url(anna))
        cursor = first.context["next_before"]
        assert cursor == first.context["items"][-1].activity.pk
        more = moderator.client.get(
            detail_url(anna), {"before": cursor}, headers={"HX-Request": "true"}
        )
        body = more.content.decode()
        assert "<html" not in body
        assert body.count("data-activity=") == 10
        assert "Load more" not in body
        shown = {i.activity.pk for i in first.context["items"]} | {
            i.activity.pk for i in more.context["items"]
        }
        assert shown == set(Activity.objects.filter(member=anna).values_list("pk", flat=True))

    def test_timeline_without_javascript_and_bad_cursor(self, moderator, community):
        anna = community["anna"]
        cursor = moderator.client.get(detail_url(anna)).context["next_before"]
        page = moderator.client.get(detail_url(anna), {"before": cursor})
        assert "<html" in page.content.decode()
        assert len(page.context["items"]) == 10
        bad = moderator.client.get(detail_url(anna), {"before": "x'; drop"})
        assert bad.status_code == 200
        assert len(bad.context["items"]) == 50

    def test_times_render_in_the_workspace_time_zone(self, moderator, workspace):
        workspace.time_zone = "Asia/Shanghai"
        workspace.save()
        member = person(workspace, "Li")
        items = [
            ActivityIn(
                member_id=member.pk,
                kind="review",
                channel="shop",
                occurred_at=dt.datetime(2025, 3, 1, 23, 30, tzinfo=dt.UTC),
                source="test",
                source_id="tz-1",
            )
        ]
        with TestCase.captureOnCommitCallbacks(execute=True):
            activity_record_bulk(workspace=workspace, items=items)
        body = moderator.client.get(detail_url(member)).content.decode()
        assert 'datetime="2025-03-02T07:30:00+08:00"' in body
        assert "Asia/Shanghai" in body

    def test_merged_member_redirects_to_survivor(self, moderator, community):
        anna, anna2 = community["anna"], community["anna2"]
        member_merge(workspace=anna.workspace, survivor=anna, merged=anna2, actor=moderator.user)
        response = moderator.client.get(detail_url(anna2), follow=True)
        assert response.redirect_chain[-1][0] == detail_url(anna)
        assert "was merged into this one" in response.content.decode()


class TestMergeActions:
    def suggestion(self, community: dict[str, Member]) -> MergeSuggestion:
        return MergeSuggestion.objects.get(member_a=community["anna"], member_b=community["anna2"])

    def accept_url(self, member: Member, suggestion: MergeSuggestion) -> str:
        return reverse(
            "people:suggestion_accept",
            kwargs={
                "slug": member.workspace.slug,
                "member_id": member.pk,
                "suggestion_id": suggestion.pk,
            },
        )

    def test_accept_merges_the_other_member_into_this_one(self, moderator, community):
        anna, anna2 = community["anna"], community["anna2"]
        suggestion = self.suggestion(community)
        # Accept on the younger member's profile: that one survives, not member_a.
        response = moderator.client.post(self.accept_url(anna2, suggestion), follow=True)
        assert response.status_code == 200
        anna.refresh_from_db()
        assert anna.merged_into_id == anna2.pk
        assert Identity.objects.filter(member=anna2, value="anna@example.com").exists()
        assert Activity.objects.filter(member=anna2).count() == 63
        suggestion.refresh_from_db()
        assert suggestion.status == MergeSuggestion.Status.ACCEPTED
        body = response.content.decode()
        assert "Anna Bianchi was merged into Anna B." in body
        assert "anna@example.com" in body  # the merged identity now shows on the survivor

    def test_accept_rejects_get_and_weaker_roles(self, moderator, analyst, stranger, community):
        anna = community["anna"]
        url = self.accept_url(anna, self.suggestion(community))
        assert moderator.client.get(url).status_code == 405
        assert analyst.client.post(url).status_code == 403
        assert stranger.client.post(url).status_code == 404
        assert Member.objects.get(pk=community["anna2"].pk).merged_into_id is None

    def test_accept_twice_says_already_decided(self, moderator, community):
        anna = community["anna"]
        suggestion = self.suggestion(community)
        moderator.client.post(self.accept_url(anna, suggestion))
        response = moderator.client.post(self.accept_url(anna, suggestion), follow=True)
        assert response.status_code == 200
        assert MergeRecord.objects.filter(workspace=anna.workspace).count() == 1

    def test_suggestion_of_other_members_is_404(self, moderator, community):
        suggestion = self.suggestion(community)
        url = self.accept_url(community["bruno"], suggestion)
        assert moderator.client.post(url).status_code == 404
        missing = MergeSuggestion(pk=99_999_999)
        assert moderator.client.post(self.accept_url(community["anna"], missing)).status_code == 404

    def test_reject(self, moderator, community):
        anna = community["anna"]
        suggestion = self.suggestion(community)
        url = reverse(
            "people:suggestion_reject",
            kwargs={
                "slug": anna.workspace.slug,
                "member_id": anna.pk,
                "suggestion_id": suggestion.pk,
            },
        )
        assert moderator.client.get(url).status_code == 405
        response = moderator.client.post(url, follow=True)
        assert response.status_code == 200
        suggestion.refresh_from_db()
        assert suggestion.status == MergeSuggestion.Status.REJECTED
        assert response.context["suggestions"] == []
        assert Member.objects.get(pk=community["anna2"].pk).merged_into_id is None

    def test_undo_puts_everything_back(self, moderator, analyst, community):
        anna, anna2 = community["anna"], community["anna2"]
        moderator.client.post(self.accept_url(anna, self.suggestion(community)))
        record = MergeRecord.objects.get(survivor=anna)
        url = reverse(
            "people:merge_undo",
            kwargs={"slug": anna.workspace.slug, "member_id": anna.pk, "record_id": record.pk},
        )
        page = moderator.client.get(detail_url(anna)).content.decode()
        assert 'data-action="undo"' in page
        assert moderator.client.get(url).status_code == 405
        assert analyst.client.post(url).status_code == 403
        response = moderator.client.post(url, follow=True)
        assert response.status_code == 200
        anna2.refresh_from_db()
        assert anna2.merged_into_id is None
        assert Identity.objects.get(value="anna.b@example.org").member_id == anna2.pk
        assert Activity.objects.filter(member=anna2).count() == 3
        record.refresh_from_db()
        assert record.undone_at is not None
        assert "is a separate member again" in response.content.decode()
        again = moderator.client.post(url, follow=True)
        assert "already undone" in again.content.decode()

    def test_undo_of_a_merge_of_another_workspace_is_404(
        self, moderator, community, other_workspace
    ):
        a = MemberFactory(workspace=other_workspace)
        b = MemberFactory(workspace=other_workspace)
        foreign = member_merge(workspace=other_workspace, survivor=a, merged=b, actor=None)
        anna = community["anna"]
        url = reverse(
            "people:merge_undo",
            kwargs={"slug": anna.workspace.slug, "member_id": anna.pk, "record_id": foreign.pk},
        )
        assert moderator.client.post(url).status_code == 404


class TestTags:
    def url(self, member: Member, action: str) -> str:
        return reverse(
            f"people:member_tag_{action}",
            kwargs={"slug": member.workspace.slug, "member_id": member.pk},
        )

    def test_add_and_remove(self, moderator, community):
        bruno = community["bruno"]
        response = moderator.client.post(self.url(bruno, "add"), {"tag": "  Early Adopter "})
        assert response.status_code == 302
        assert list(MemberTag.objects.filter(member=bruno).values_list("tag", flat=True)) == [
            "early adopter"
        ]
        moderator.client.post(self.url(bruno, "remove"), {"tag": "early adopter"})
        assert not MemberTag.objects.filter(member=bruno).exists()

    def test_bad_tags_are_refused_with_a_message(self, moderator, community):
        bruno = community["bruno"]
        for bad in ("", "   ", "x" * 65):
            response = moderator.client.post(self.url(bruno, "add"), {"tag": bad}, follow=True)
            assert response.status_code == 200
            assert list(response.context["messages"])
        assert not MemberTag.objects.filter(member=bruno).exists()

    def test_get_analyst_outsider(self, moderator, analyst, stranger, community):
        bruno = community["bruno"]
        assert moderator.client.get(self.url(bruno, "add")).status_code == 405
        assert analyst.client.post(self.url(bruno, "add"), {"tag": "x"}).status_code == 403
        assert stranger.client.post(self.url(bruno, "add"), {"tag": "x"}).status_code == 404
        assert not MemberTag.objects.filter(member=bruno).exists()


# --------------------------------------------------------------------------- filter parsing

filter_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["q", "tag", "level", "active", "pending", "sort", "page", "x"]),
        st.one_of(
            filter_values,
            st.sampled_from(["vip", "core", "never", "7", "30", "name", "-love", "1", "on"]),
        ),
    )
)
def test_any_query_string_gives_valid_filters_that_round_trip(params):
    """Whatever the address says, the list shows; and its links reproduce the same filters."""
    tags = ["vip", "wholesale"]
    filters = MemberFilterForm(QueryDict(urlencode(params)), tags=tags).filters()
    assert filters.sort in SORT_KEYS
    assert filters.level in ("", *LEVELS)
    assert filters.tag in ("", *tags)
    assert filters.active in ("", "7", "30", "90", "never")
    again = MemberFilterForm(QueryDict(filters.as_query()), tags=tags).filters()
    assert again == filters


def edit_url(member: Member) -> str:
    return reverse(
        "people:member_edit", kwargs={"slug": member.workspace.slug, "member_id": member.pk}
    )


class TestMemberEdit:
    def test_moderator_saves_details_and_consent_audited(self, moderator, community):
        anna = community["anna"]
        response = moderator.client.post(
            edit_url(anna),
            {
                "display_name": "Anna  Bianchi Rossi",
                "city": "Torino",
                "country": "it",
                "languages": "it, EN, it",
                "consent_email": "on",
            },
        )
        assert response.status_code == 302
        assert response["Location"].endswith("#details")
        anna.refresh_from_db()
        assert (anna.display_name, anna.city, anna.country) == (
            "Anna Bianchi Rossi",
            "Torino",
            "IT",
        )
        assert anna.languages == ["it", "en"]
        assert (anna.consent_email, anna.consent_profiling) == (True, False)
        from circolo.core.models import AuditLog

        entry = AuditLog.objects.get(workspace=anna.workspace, action="member.update")
        assert entry.data["changes"]["consent_email"] == [False, True]
        page = moderator.client.get(
            reverse(
                "people:member_detail", kwargs={"slug": anna.workspace.slug, "member_id": anna.pk}
            )
        ).content.decode()
        assert 'id="details"' in page and "save-details" in page

    def test_bad_input_names_the_field_and_changes_nothing(self, moderator, community):
        anna = community["anna"]
        response = moderator.client.post(
            edit_url(anna), {"display_name": "X", "country": "ITA", "languages": "it"}, follow=True
        )
        assert "Country" in response.content.decode()
        response = moderator.client.post(
            edit_url(anna), {"display_name": "X", "country": "I1", "languages": "it"}, follow=True
        )
        assert "is not a two-letter country code" in response.content.decode()
        anna.refresh_from_db()
        assert anna.display_name == "Anna Bianchi"

    def test_analyst_cannot_edit_and_outsider_sees_nothing(self, analyst, stranger, community):
        anna = community["anna"]
        assert analyst.client.post(edit_url(anna), {"display_name": "X"}).status_code == 403
        assert stranger.client.post(edit_url(anna), {"display_name": "X"}).status_code == 404
        assert analyst.client.get(edit_url(anna)).status_code in (403, 405)
        page = analyst.client.get(
            reverse(
                "people:member_detail", kwargs={"slug": anna.workspace.slug, "member_id": anna.pk}
            )
        ).content.decode()
        assert "save-details" not in page
        anna.refresh_from_db()
        assert anna.display_name == "Anna Bianchi"
