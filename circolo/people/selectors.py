"""Reads on members, always inside one workspace: get, list, export rows, suggestions, merges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import (
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.scores import LEVELS, level_growth_range, level_of, love_now
from circolo.core.models import Workspace
from circolo.people.models import (
    Identity,
    IdentityKind,
    Member,
    MemberTag,
    MergeRecord,
    MergeSuggestion,
)
from circolo.people.normalise import name_key

CSV_HEADER = [
    "id",
    "display_name",
    "emails",
    "phones",
    "city",
    "country",
    "languages",
    "tags",
    "level",
    "love",
    "first_seen",
    "last_seen",
    "last_active",
]
CSV_CHUNK = 2000
# Order statuses that still count as a purchase for the "bought product" filter: the
# commerce app's statuses, named here because people reaches orders only by relation name.
KEPT_ORDER_STATUSES = ("pending", "paid", "fulfilled", "partially_refunded")
# Spreadsheets run cells starting with these as formulas; such cells get a leading "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _sort_orders() -> dict[str, list[object]]:
    growth, last_active, first_seen = F("score__growth"), F("score__last_active"), F("first_seen")
    return {
        "name": [F("name_key").asc(), F("pk").asc()],
        "-name": [F("name_key").desc(), F("pk").desc()],
        # Members without a score (never active) come last whichever way love is sorted.
        "love": [growth.asc(nulls_last=True), F("pk").asc()],
        "-love": [growth.desc(nulls_last=True), F("pk").desc()],
        "last_active": [last_active.asc(nulls_last=True), F("pk").asc()],
        "-last_active": [last_active.desc(nulls_last=True), F("pk").desc()],
        "first_seen": [first_seen.asc(nulls_last=True), F("pk").asc()],
        "-first_seen": [first_seen.desc(nulls_last=True), F("pk").desc()],
    }


SORT_KEYS = frozenset(_sort_orders())


def member_get(*, workspace: Workspace, member_id: int) -> Member:
    """The live member `member_id` of the workspace; Member.DoesNotExist otherwise (also merged)."""
    return Member.objects.get(workspace=workspace, pk=member_id, merged_into__isnull=True)


def member_list(
    *,
    workspace: Workspace,
    q: str = "",
    tag: str = "",
    level: str = "",
    active_within_days: int | None = None,
    sort: str = "-love",
) -> QuerySet[Member]:
    """Live members filtered and sorted, annotated with `love_growth` and `last_active`.

    `q` matches the name and identity values; `level` is one of activity.scores.LEVELS.
    ValueError on an unknown level or sort key.
    """
    if sort not in SORT_KEYS:
        raise ValueError(_("Unknown sort order “%(sort)s”.") % {"sort": sort})
    members = Member.objects.filter(workspace=workspace, merged_into__isnull=True).annotate(
        love_growth=F("score__growth"), last_active=F("score__last_active")
    )
    query = " ".join(q.split())
    if query:
        identity_match = Identity.objects.filter(
            workspace=workspace, member=OuterRef("pk"), value__icontains=query.lower()
        )
        by_name = Q(display_name__icontains=query)
        key = name_key(query)
        if key:
            by_name |= Q(name_key__contains=key)
        members = members.filter(by_name | Exists(identity_match))
    if tag:
        members = members.filter(tags__tag=" ".join(tag.split()).lower())
    if level:
        if level not in LEVELS:
            raise ValueError(_("Unknown level “%(level)s”.") % {"level": level})
        low, high = level_growth_range(level)
        in_range = Q(score__growth__gte=low)
        if high is not None:
            in_range &= Q(score__growth__lt=high)
        if level == LEVELS[0]:
            # No score row means love 0: the lowest level.
            in_range |= Q(score__isnull=True)
        members = members.filter(in_range)
    if active_within_days is not None:
        since = timezone.now() - dt.timedelta(days=active_within_days)
        members = members.filter(score__last_active__gte=since)
    return members.order_by(*_sort_orders()[sort])  # type: ignore[arg-type]


def members_by_purchases(
    members: QuerySet[Member],
    *,
    workspace: Workspace,
    currency: str,
    min_spend_minor: int | None = None,
    max_spend_minor: int | None = None,
    min_orders: int | None = None,
    product: str = "",
    last_order_after: dt.datetime | None = None,
    last_order_before: dt.datetime | None = None,
) -> QuerySet[Member]:
    """`members` narrowed by what they bought. Spend is net of refunds in `currency` (minor
    units; no orders counts as zero); order count and last order are over every currency;
    `product` matches a SKU exactly or a line's or product's title in part. `last_order_*`
    bounds are inclusive after and exclusive before. Commerce rows are reached through their
    relation names (commerce, orders), so people does not import the commerce app.
    """
    if min_spend_minor is not None or max_spend_minor is not None:
        members = members.alias(
            spend_row=FilteredRelation("commerce", condition=Q(commerce__currency=currency))
        )
        if min_spend_minor is not None:
            members = members.filter(spend_row__net_spend_minor__gte=min_spend_minor)
        if max_spend_minor is not None:
            members = members.filter(
                Q(spend_row__net_spend_minor__lte=max_spend_minor) | Q(spend_row__isnull=True)
            )
    per_member = Member.objects.filter(pk=OuterRef("pk")).values("pk")
    if min_orders is not None:
        orders = per_member.annotate(total=Sum("commerce__order_count")).values("total")
        members = members.alias(
            purchase_orders=Coalesce(Subquery(orders), Value(0), output_field=IntegerField())
        ).filter(purchase_orders__gte=min_orders)
    if last_order_after is not None or last_order_before is not None:
        last = per_member.annotate(last=Max("commerce__last_order_at")).values("last")
        members = members.alias(purchase_last=Subquery(last))
        if last_order_after is not None:
            members = members.filter(purchase_last__gte=last_order_after)
        if last_order_before is not None:
            members = members.filter(purchase_last__lt=last_order_before)
    needle = " ".join(product.split())
    if needle:
        # One filter() call: the status and the match hold for the same order line.
        buyers = Member.objects.filter(
            Q(orders__lines__sku__iexact=needle)
            | Q(orders__lines__title__icontains=needle)
            | Q(orders__lines__product__title__icontains=needle),
            workspace=workspace,
            orders__status__in=KEPT_ORDER_STATUSES,
        )
        members = members.filter(pk__in=buyers.values("pk"))
    return members


def member_csv_rows(*, workspace: Workspace, queryset: QuerySet[Member]) -> Iterator[list[str]]:
    """CSV rows of the members in `queryset` (header first), streamed in chunks.

    A constant number of queries per chunk of 2,000 members, whatever the size of the list.
    """
    yield list(CSV_HEADER)
    contacts = Identity.objects.filter(
        workspace=workspace, kind__in=[IdentityKind.EMAIL, IdentityKind.PHONE]
    ).order_by("kind", "value")
    members = (
        queryset.filter(workspace=workspace)
        .select_related("score")
        .prefetch_related(
            Prefetch("identities", queryset=contacts, to_attr="csv_contacts"),
            Prefetch(
                "tags",
                queryset=MemberTag.objects.filter(workspace=workspace).order_by("tag"),
                to_attr="csv_tags",
            ),
        )
    )
    now = timezone.now()
    for member in members.iterator(chunk_size=CSV_CHUNK):
        score = getattr(member, "score", None)
        love = love_now(score.growth, now) if score is not None else 0.0
        emails = [i.value for i in member.csv_contacts if i.kind == IdentityKind.EMAIL]
        phones = [i.value for i in member.csv_contacts if i.kind == IdentityKind.PHONE]
        yield [
            str(member.pk),
            _cell(member.display_name),
            _cell(" ".join(emails)),
            " ".join(phones),
            _cell(member.city),
            member.country,
            " ".join(member.languages or []),
            _cell(", ".join(tag.tag for tag in member.csv_tags)),
            level_of(love),
            f"{love:.2f}",
            _time(member.first_seen),
            _time(member.last_seen),
            _time(score.last_active if score is not None else None),
        ]


def _cell(value: str) -> str:
    """Text from members, made safe to open in a spreadsheet (no formulas)."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _time(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value is not None else ""


def pending_suggestions(
    *, workspace: Workspace, member: Member | None = None
) -> QuerySet[MergeSuggestion]:
    """Pending merge suggestions between live members, strongest first; of one member if given."""
    suggestions = MergeSuggestion.objects.filter(
        workspace=workspace,
        status=MergeSuggestion.Status.PENDING,
        member_a__merged_into__isnull=True,
        member_b__merged_into__isnull=True,
    )
    if member is not None:
        suggestions = suggestions.filter(Q(member_a=member) | Q(member_b=member))
    return suggestions.select_related("member_a", "member_b").order_by(
        "-score", "-created_at", "-pk"
    )


def merge_history(*, workspace: Workspace, member: Member) -> QuerySet[MergeRecord]:
    """Merges the member took part in (as survivor or as merged), newest first."""
    return (
        MergeRecord.objects.filter(workspace=workspace)
        .filter(Q(survivor=member) | Q(merged=member))
        .select_related("survivor", "merged", "merged_by", "undone_by", "suggestion")
        .order_by("-created_at", "-pk")
    )


def workspace_tags(*, workspace: Workspace) -> list[str]:
    """Every tag used on a live member of the workspace, sorted."""
    return list(
        MemberTag.objects.filter(workspace=workspace, member__merged_into__isnull=True)
        .order_by("tag")
        .values_list("tag", flat=True)
        .distinct()
    )
