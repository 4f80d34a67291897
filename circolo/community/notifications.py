"""Telling members what happened: the one way to create a notification, the fan-out after a
new post (mentions, quotes, replies, follows, "ask owners"), what a member may see of their
notifications, and the mail: batched notifications, digests and one-click unsubscribe.

Quote syntax (what the reply form's "Quote" button writes, see `quote_markdown`): a
blockquote whose first line names the quoted post's author and links to the post,

    > @giulia [#3](/c/bottega/t/42/#post-3)
    > the quoted text...

`quoted_posts` reads it back: the "#N" is the post's number in the same thread (a link to
another thread's post is not a quote of this thread and tells nobody).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from circolo.commerce.selectors import sku_owners_recent
from circolo.people.models import Identity, IdentityKind, Member

from .markdown import excerpt
from .mentions import _CODE_RE, mentioned_handles
from .models import CommunityProfile, Event, Follow, Notification, Post, Thread
from .profiles import HANDLE_PATTERN, profile_ensure
from .selectors import member_is_staff, readable_spaces, readable_threads, space_readable

logger = logging.getLogger(__name__)

Kind = Notification.Kind

# Who gets which notification when one post concerns them in several ways (lower wins).
PRIORITY: dict[str, int] = {
    Kind.MENTION: 0,
    Kind.QUOTE: 1,
    Kind.REPLY: 2,
    Kind.ASK_OWNERS: 3,
    Kind.FOLLOWED_THREAD: 4,
    Kind.FOLLOWED_SPACE: 5,
    Kind.FOLLOWED_MEMBER: 6,
}
MENTIONS_MAX = 20  # handles per post that are told; more is a mass ping, not a mention
ASK_OWNERS_MAX = 5  # owners asked per question
ASK_OWNERS_WEEKLY = 3  # nobody is asked more often than this in 7 days
ASK_OWNERS_WINDOW = dt.timedelta(days=7)
MAIL_INTERVAL = dt.timedelta(minutes=10)  # at most one notification mail per member
MAIL_ITEMS_MAX = 50  # listed in one mail; the rest are counted
MAIL_RECIPIENTS_PER_RUN = 500
INACTIVE_AFTER = dt.timedelta(days=183)  # members not seen for this long get no mail
DIGEST_THREADS = 10
DIGEST_PERIODS = {
    CommunityProfile.Digest.DAILY: dt.timedelta(days=1),
    CommunityProfile.Digest.WEEKLY: dt.timedelta(days=7),
}
MAIL_LANGUAGES = ("en", "it", "es", "zh-hans")
UNSUBSCRIBE_SALT = "circolo.community.unsubscribe"
# Unsubscribe "kinds" besides Notification.Kind: every notification mail, and the digest.
ALL_MAIL = "all"
DIGEST = "digest"

QUOTE_RE = re.compile(
    rf"^[ \t]{{0,3}}>[ \t]*@(?:{HANDLE_PATTERN})[ \t]+\[#(\d+)\]\(([^)\s]*)\)", re.MULTILINE
)
_THREAD_IN_LINK = re.compile(r"/t/(\d+)/")


# --------------------------------------------------------------------------- creating


def _may_tell(recipient: Member, actor: Member | None) -> bool:
    """Nobody is told of their own doing; merged and erased members are told nothing."""
    if actor is not None and actor.pk == recipient.pk:
        return False
    return recipient.merged_into_id is None and recipient.erased_at is None


def notify(
    *,
    recipient: Member,
    kind: str,
    key: str,
    actor: Member | None = None,
    thread: Thread | None = None,
    post: Post | None = None,
    event: Event | None = None,
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Notification | None:
    """Tell `recipient` about something, once per (recipient, key). Nothing is created for
    the actor themselves, for a merged or erased member, or about a thread in a space the
    recipient may not read. Returns the new notification, or None."""
    if kind not in Notification.Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    if not _may_tell(recipient, actor):
        return None
    if thread is None and post is not None:
        thread = post.thread
    if thread is None and event is not None:
        thread = event.thread
    space = thread.space if thread is not None else (event.space if event is not None else None)
    if space is not None and not space_readable(space, recipient):
        return None
    try:
        with transaction.atomic():
            return Notification.objects.create(
                workspace_id=recipient.workspace_id,
                recipient=recipient,
                kind=kind,
                key=key[:80],
                actor=actor,
                thread=thread,
                post=post,
                event=event,
                data=data or {},
                created_at=now or timezone.now(),
            )
    except IntegrityError:
        return None  # told already


def notify_members(
    *,
    workspace_id: int,
    kind: str,
    items: Sequence[tuple[int, str, dict[str, Any]]],
    now: dt.datetime | None = None,
) -> int:
    """`notify` for many members about things that concern only them (no thread, post or
    event: their points, tier, badges), `items` being (member id, key, data), in bulk. The
    same rules: merged and erased members are told nothing, once per (member, key).
    Returns how many were asked for."""
    if kind not in Notification.Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    if not items:
        return 0
    moment = now or timezone.now()
    ids = sorted({member_id for member_id, _key, _data in items})
    gone: set[int] = set()
    for start in range(0, len(ids), 5000):
        gone.update(
            Member.objects.filter(workspace_id=workspace_id, pk__in=ids[start : start + 5000])
            .filter(Q(merged_into__isnull=False) | Q(erased_at__isnull=False))
            .values_list("pk", flat=True)
        )
    rows = [
        Notification(
            workspace_id=workspace_id,
            recipient_id=member_id,
            kind=kind,
            key=key[:80],
            data=data,
            created_at=moment,
        )
        for member_id, key, data in items
        if member_id not in gone
    ]
    # A (member, key) told before is a conflict on the unique key: skipped, never twice.
    Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return len(rows)


def notify_many(
    *,
    recipients: Iterable[Member],
    kind: str,
    key: str,
    actor: Member | None = None,
    post: Post,
    now: dt.datetime | None = None,
) -> int:
    """`notify` for many recipients of one post, in one INSERT: the same rules (not the
    actor, not merged or erased members, only readers of the post's space, once per key).
    Returns how many were told."""
    if kind not in Notification.Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    thread = post.thread
    wanted = {
        member.pk: member
        for member in recipients
        if member.workspace_id == post.workspace_id and _may_tell(member, actor)
    }
    if not wanted:
        return 0
    told = set(
        Notification.objects.filter(recipient_id__in=wanted, key=key[:80]).values_list(
            "recipient_id", flat=True
        )
    )
    moment = now or timezone.now()
    rows = [
        Notification(
            workspace_id=post.workspace_id,
            recipient=member,
            kind=kind,
            key=key[:80],
            actor=actor,
            thread=thread,
            post=post,
            created_at=moment,
        )
        for pk, member in wanted.items()
        if pk not in told and space_readable(thread.space, member)
    ]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --------------------------------------------------------------------------- quotes


def quoted_posts(text: str, thread: Thread) -> list[Post]:
    """The posts of `thread` that a post's Markdown quotes (see the module's quote syntax),
    in order, without repeats; quotes inside code do not count."""
    numbers: list[int] = []
    for number, link in QUOTE_RE.findall(_CODE_RE.sub("", text)):
        linked = _THREAD_IN_LINK.search(link)
        if linked is not None and int(linked.group(1)) != thread.pk:
            continue
        numbers.append(int(number))
    numbers = list(dict.fromkeys(numbers))
    if not numbers:
        return []
    posts = {
        post.number: post
        for post in Post.objects.filter(thread=thread, number__in=numbers).select_related("author")
    }
    return [posts[n] for n in numbers if n in posts]


def quote_markdown(*, post: Post, url: str) -> str:
    """The Markdown a "Quote" button puts in the reply box for `post` (link: `url`)."""
    handle = profile_ensure(post.author).handle
    lines = [f"> @{handle} [#{post.number}]({url})"]
    lines += [f"> {line}".rstrip() for line in post.body.strip().splitlines()]
    return "\n".join(lines) + "\n\n"


# --------------------------------------------------------------------------- fan-out


def _mentioned_members(post: Post) -> list[Member]:
    handles = mentioned_handles(post.body)[:MENTIONS_MAX]
    if not handles:
        return []
    profiles = (
        CommunityProfile.objects.filter(workspace_id=post.workspace_id)
        .annotate(lowered=Lower("handle"))
        .filter(lowered__in=handles)
        .select_related("member")
    )
    return [profile.member for profile in profiles]


def _followers(post: Post) -> dict[str, list[Member]]:
    thread = post.thread
    follows = Follow.objects.filter(workspace_id=post.workspace_id).select_related("member")
    wanted = Q(followed_id=post.author_id)
    if post.number > 1:
        wanted |= Q(thread_id=thread.pk)
    else:
        spaces = [thread.space_id] + ([thread.space.parent_id] if thread.space.parent_id else [])
        wanted |= Q(space_id__in=spaces)
    found: dict[str, list[Member]] = {
        Kind.FOLLOWED_THREAD: [],
        Kind.FOLLOWED_SPACE: [],
        Kind.FOLLOWED_MEMBER: [],
    }
    for follow in follows.filter(wanted):
        if follow.thread_id is not None:
            found[Kind.FOLLOWED_THREAD].append(follow.member)
        elif follow.space_id is not None:
            found[Kind.FOLLOWED_SPACE].append(follow.member)
        else:
            found[Kind.FOLLOWED_MEMBER].append(follow.member)
    return found


def _owners_to_ask(thread: Thread, skip: set[int], now: dt.datetime) -> list[Member]:
    """Up to ASK_OWNERS_MAX members who bought (and kept) one of the question's products,
    most recent buyers first, who may read the space and were not asked too often lately."""
    candidates = sku_owners_recent(
        workspace_id=thread.workspace_id,
        skus=thread.skus,
        exclude_member_ids={thread.author_id, *skip},
        limit=ASK_OWNERS_MAX * 10,
    )
    if not candidates:
        return []
    busy = set(
        Notification.objects.filter(
            workspace_id=thread.workspace_id,
            kind=Kind.ASK_OWNERS,
            recipient_id__in=candidates,
            created_at__gt=now - ASK_OWNERS_WINDOW,
        )
        .exclude(thread=thread)
        .values("recipient_id")
        .annotate(n=Count("id"))
        .filter(n__gte=ASK_OWNERS_WEEKLY)
        .values_list("recipient_id", flat=True)
    )
    members = Member.objects.filter(
        workspace_id=thread.workspace_id,
        pk__in=[pk for pk in candidates if pk not in busy],
        merged_into__isnull=True,
        erased_at__isnull=True,
    ).in_bulk()
    chosen: list[Member] = []
    for pk in candidates:
        member = members.get(pk)
        if member is not None and space_readable(thread.space, member):
            chosen.append(member)
            if len(chosen) == ASK_OWNERS_MAX:
                break
    return chosen


def post_fanout(*, post_id: int, now: dt.datetime | None = None) -> int:
    """Tell everyone a visible post concerns, each member once (mention > quote > reply >
    ask owners > followed thread/space/member), and let its author follow the thread on
    their first post there. Safe to run again (keys are per post). Returns how many told."""
    post = (
        Post.objects.filter(pk=post_id)
        .select_related("thread", "thread__space", "thread__space__parent", "author")
        .first()
    )
    if post is None or post.hidden_at is not None or post.thread.hidden_at is not None:
        return 0
    thread = post.thread
    moment = now or timezone.now()
    first_here = (
        post.edited_at is None
        and not Post.objects.filter(
            thread=thread, author_id=post.author_id, number__lt=post.number
        ).exists()
    )
    if first_here:
        # Discourse's "tracking" default: who writes in a thread follows it (once: a member
        # who unfollowed is not made to follow again by a later post or an edit).
        from .follows import thread_autofollow

        thread_autofollow(member=post.author, thread=thread)

    chosen: dict[int, tuple[str, Member]] = {}

    def offer(kind: str, members: Iterable[Member]) -> None:
        for member in members:
            if member.pk == post.author_id:
                continue
            held = chosen.get(member.pk)
            if held is None or PRIORITY[kind] < PRIORITY[held[0]]:
                chosen[member.pk] = (kind, member)

    # An edit tells only whom it newly mentions or quotes; the rest heard of the post already
    # (or, following since, did not follow when it was new).
    edited = post.edited_at is not None
    offer(Kind.MENTION, _mentioned_members(post))
    if post.number > 1:
        offer(Kind.QUOTE, [p.author for p in quoted_posts(post.body, thread) if not p.hidden_at])
        if not edited:
            offer(Kind.REPLY, [thread.author])
    if not edited:
        for kind, members in _followers(post).items():
            offer(kind, members)
    if not edited and post.number == 1 and thread.kind == Thread.Kind.QUESTION and thread.skus:
        strong = {pk for pk, (kind, _m) in chosen.items() if PRIORITY[kind] < 3}
        offer(Kind.ASK_OWNERS, _owners_to_ask(thread, strong, moment))

    by_kind: dict[str, list[Member]] = {}
    for kind, member in chosen.values():
        by_kind.setdefault(kind, []).append(member)
    told = 0
    for kind, members in by_kind.items():
        told += notify_many(
            recipients=members, kind=kind, key=f"post:{post.pk}", actor=post.author, post=post,
            now=moment,
        )  # fmt: skip
    return told


# --------------------------------------------------------------------------- reading


def notifications_visible(member: Member) -> QuerySet[Notification]:
    """The member's notifications about things they may still read, newest first: nothing
    about a space they cannot read (any more), a hidden post or thread (except the
    moderators' word to the post's author), or another workspace."""
    spaces = readable_spaces(member.workspace_id, member)
    found = Notification.objects.filter(recipient=member, workspace_id=member.workspace_id)
    found = found.filter(Q(thread__isnull=True) | Q(thread__space__in=spaces))
    found = found.filter(Q(event__isnull=True) | Q(event__space__in=spaces))
    if not member_is_staff(member):
        own = Q(kind=Kind.MODERATION) & (Q(post__isnull=True) | Q(post__author=member))
        found = found.filter(Q(thread__isnull=True) | Q(thread__hidden_at__isnull=True) | own)
        found = found.filter(Q(post__isnull=True) | Q(post__hidden_at__isnull=True) | own)
    return found.order_by("-created_at", "-pk")


def unread_count(member: Member) -> int:
    """How many of the member's visible notifications are unread (the bell)."""
    return notifications_visible(member).filter(read_at__isnull=True).count()


def notification_text(notification: Notification) -> str:
    """One sentence saying what happened, in the active language."""
    actor = notification.actor
    who = (actor.display_name if actor is not None else "") or _("A member")
    thread = notification.thread.title if notification.thread is not None else ""
    data = notification.data or {}
    kind = notification.kind
    if kind == Kind.EVENT:
        title = notification.event.title if notification.event else str(data.get("title", ""))
        what = data.get("what")
        if what == "cancelled":
            return _("The event “%(title)s” was cancelled.") % {"title": title}
        if what == "promoted":
            return _("A place freed up: you are going to “%(title)s”.") % {"title": title}
        if what == "reminder":
            return _("“%(title)s” starts soon.") % {"title": title}
        return _("News about the event “%(title)s”.") % {"title": title}
    if kind == Kind.TRUST:
        try:
            level = str(CommunityProfile.TrustLevel(int(data.get("to", 0))).label)
        except ValueError:
            level = str(data.get("to", ""))
        return _("Your trust level is now “%(level)s”.") % {"level": level}
    if kind == Kind.REWARDS:
        return rewards_text(data)
    if kind == Kind.MODERATION:
        if data.get("decision") == "approved":
            return _("A moderator approved your post in “%(thread)s”.") % {"thread": thread}
        if data.get("decision") == "rejected":
            return _("A moderator did not approve your post in “%(thread)s”.") % {"thread": thread}
        return _("A moderator looked at your post in “%(thread)s”.") % {"thread": thread}
    sentences: dict[str, str] = {
        Kind.REPLY: _("%(actor)s replied to “%(thread)s”."),
        Kind.MENTION: _("%(actor)s mentioned you in “%(thread)s”."),
        Kind.QUOTE: _("%(actor)s quoted you in “%(thread)s”."),
        Kind.ACCEPTED: _("%(actor)s accepted your answer in “%(thread)s”."),
        Kind.REACTION: _("%(actor)s reacted to your post in “%(thread)s”."),
        Kind.FOLLOWED_THREAD: _("%(actor)s posted in “%(thread)s”."),
        Kind.FOLLOWED_SPACE: _("%(actor)s started “%(thread)s” in %(space)s."),
        Kind.FOLLOWED_MEMBER: _("%(actor)s posted in “%(thread)s”."),
        Kind.ASK_OWNERS: _("%(actor)s asks owners of a product you bought: “%(thread)s”."),
    }
    space = notification.thread.space.name if notification.thread is not None else ""
    sentence = sentences.get(kind, _("%(actor)s: “%(thread)s”."))
    return sentence % {"actor": who, "thread": thread, "space": space}


def rewards_text(data: dict[str, Any]) -> str:
    """The sentence of a rewards notification (what the loyalty program put in `data`)."""
    what = data.get("what")
    values = {key: value for key, value in data.items() if isinstance(value, str | int)}
    if what == "expiry":
        return _(
            "%(points)s of your points expire on %(date)s. Any activity in the community or"
            " the shop keeps them."
        ) % {"points": values.get("points", ""), "date": values.get("date", "")}
    if what == "tier":
        return _("You reached the tier “%(tier)s”.") % {"tier": values.get("tier", "")}
    if what == "badge":
        return _("You earned the badge “%(badge)s”.") % {"badge": values.get("badge", "")}
    if what == "referral":
        return _("Your friend's first order earned you %(points)s points.") % {
            "points": values.get("points", "")
        }
    if what == "dispute":
        return _("The team answered your question about your points.")
    if what == "ambassador":
        return _("Welcome to the ambassador program!")
    if what == "ambassador_invited":
        return _("You are invited to become an ambassador: see your rewards page.")
    return _("News about your points and rewards.")


def notification_target(notification: Notification, slug: str) -> str:
    """Where the notification leads (a path): the post, the thread, the event, or home."""
    hidden = (notification.post is not None and notification.post.hidden_at is not None) or (
        notification.thread is not None and notification.thread.hidden_at is not None
    )
    if notification.post is not None and not hidden:
        url = reverse("community:thread", args=[slug, notification.post.thread_id])
        return f"{url}#post-{notification.post.number}"
    if notification.thread is not None and not hidden:
        return reverse("community:thread", args=[slug, notification.thread_id])
    if notification.event is not None:
        return reverse("community:event", args=[slug, notification.event_id])
    if notification.kind == Kind.REWARDS:
        return reverse("loyalty:rewards", args=[slug])
    return reverse("community:home", args=[slug])


def notifications_read(*, member: Member, ids: Iterable[int] | None = None) -> int:
    """Mark the member's notifications read (all of them, or these ids); returns how many."""
    unread = Notification.objects.filter(recipient=member, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())


# --------------------------------------------------------------------------- preferences


class PreferenceError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def email_preferences_set(*, member: Member, muted: Iterable[str], digest: str) -> CommunityProfile:
    """Which kinds of notification the member does not want by mail, and their digest."""
    muted_kinds = sorted(set(muted))
    unknown = [kind for kind in muted_kinds if kind not in Kind.values]
    if unknown:
        raise PreferenceError("muted", _("Choose among the offered kinds of notification."))
    if digest not in CommunityProfile.Digest.values:
        raise PreferenceError("digest", _("Choose how often to get a digest."))
    profile = profile_ensure(member)
    profile.email_muted = muted_kinds
    profile.digest = digest
    profile.save(update_fields=["email_muted", "digest"])
    return profile


def unsubscribe_token(*, member_id: int, kind: str) -> str:
    """A signed token that turns off one kind of mail (a notification kind, "all" or
    "digest") for one member, without signing in."""
    return signing.dumps({"m": member_id, "k": kind}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_read(token: str) -> tuple[int, str]:
    """The (member id, kind) a token was made for; signing.BadSignature when it was not
    made by us (or changed), ValueError when its content is not a known kind."""
    payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    member_id, kind = payload.get("m"), payload.get("k")
    if not isinstance(member_id, int) or kind not in {*Kind.values, ALL_MAIL, DIGEST}:
        raise ValueError("not an unsubscribe token")
    return member_id, str(kind)


def email_unsubscribe(*, member: Member, kind: str) -> CommunityProfile:
    """Stop one kind of mail for the member: a notification kind, every notification mail
    ("all"), or the digest ("digest")."""
    profile = profile_ensure(member)
    if kind == DIGEST:
        profile.digest = CommunityProfile.Digest.OFF
        profile.save(update_fields=["digest"])
    elif kind == ALL_MAIL:
        profile.email_muted = sorted(Kind.values)
        profile.save(update_fields=["email_muted"])
    elif kind in Kind.values:
        profile.email_muted = sorted({*profile.email_muted, kind})
        profile.save(update_fields=["email_muted"])
    else:
        raise PreferenceError("kind", _("This link does not name a kind of mail."))
    return profile


def unsubscribe_label(kind: str) -> str:
    if kind == DIGEST:
        return _("the digest of popular threads")
    if kind == ALL_MAIL:
        return _("all notification mail from this community")
    return str(Kind(kind).label)


# --------------------------------------------------------------------------- mail


def member_email(member: Member) -> str:
    """The address to mail: a verified email identity, else the latest known one; ""."""
    rows = Identity.objects.filter(
        workspace_id=member.workspace_id, member=member, kind=IdentityKind.EMAIL
    ).order_by("-verified", "-created_at", "-pk")
    return next((value for value in rows.values_list("value", flat=True) if "@" in value), "")


def mail_language(member: Member) -> str:
    """The member's first language when Circolo speaks it, else the site's default."""
    languages = member.languages if isinstance(member.languages, list) else []
    if languages:
        first = str(languages[0]).lower().replace("_", "-")
        if first in MAIL_LANGUAGES:
            return first
        if first.split("-")[0] in ("en", "it", "es"):
            return first.split("-")[0]
        if first in ("zh", "zh-cn", "zh-sg"):
            return "zh-hans"
    return str(settings.LANGUAGE_CODE)


def _last_seen(member: Member, profile: CommunityProfile) -> dt.datetime | None:
    seen = [at for at in (profile.last_seen_at, member.last_seen) if at is not None]
    return max(seen) if seen else None


def _inactive(member: Member, profile: CommunityProfile, now: dt.datetime) -> bool:
    seen = _last_seen(member, profile) or member.created_at
    return seen is None or seen < now - INACTIVE_AFTER


def _absolute(path: str) -> str:
    return str(settings.SITE_URL).rstrip("/") + path


def _unsubscribe_url(slug: str, member_id: int, kind: str) -> str:
    token = unsubscribe_token(member_id=member_id, kind=kind)
    return _absolute(reverse("community:unsubscribe", args=[slug, token]))


def _send(
    *,
    member: Member,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    header_kind: str,
) -> None:
    slug = member.workspace.slug
    header_url = _unsubscribe_url(slug, member.pk, header_kind)
    context = {**context, "unsubscribe_url": header_url, "community": member.workspace}
    text = render_to_string(f"community/emails/{template}.txt", context)
    html = render_to_string(f"community/emails/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.CIRCOLO_COMMUNITY_MAIL_FROM or settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={
            "List-Unsubscribe": f"<{header_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Content-Language": translation.get_language() or settings.LANGUAGE_CODE,
        },
    )
    message.attach_alternative(html, "text/html")
    message.send()


@dataclass
class MailItem:
    text: str
    url: str
    excerpt: str
    kind_label: str
    unsubscribe_url: str


def _mark(ids: Iterable[int], status: str, now: dt.datetime) -> None:
    ids = list(ids)
    if ids:
        Notification.objects.filter(pk__in=ids, email=Notification.Email.PENDING).update(
            email=status, emailed_at=now if status == Notification.Email.SENT else None
        )


def member_notifications_mail(*, member_id: int, now: dt.datetime | None = None) -> bool:
    """Send the member one mail with everything pending for them, unless they were mailed
    in the last MAIL_INTERVAL. Kinds they muted, things they can no longer read or already
    read are not mailed; members without an address or inactive for six months get none.
    Returns whether a mail went out."""
    moment = now or timezone.now()
    member = Member.objects.select_related("workspace").filter(pk=member_id).first()
    if member is None:
        return False
    pending = list(
        Notification.objects.filter(recipient=member, email=Notification.Email.PENDING)
        .select_related("actor", "thread", "thread__space", "post", "event")
        .order_by("created_at", "pk")
    )
    if not pending:
        return False
    profile = profile_ensure(member)
    last = profile.last_mailed_at
    if last is not None and moment - last < MAIL_INTERVAL:
        return False  # batched into the next mail
    address = member_email(member)
    if (
        member.merged_into_id is not None
        or member.erased_at is not None
        or not address
        or _inactive(member, profile, moment)
    ):
        _mark((n.pk for n in pending), Notification.Email.SKIPPED, moment)
        return False
    visible = set(
        notifications_visible(member)
        .filter(pk__in=[n.pk for n in pending])
        .values_list("pk", flat=True)
    )
    muted = set(profile.email_muted or [])
    keep = [n for n in pending if n.pk in visible and n.kind not in muted and n.read_at is None]
    kept = {n.pk for n in keep}
    _mark((n.pk for n in pending if n.pk not in kept), Notification.Email.SKIPPED, moment)
    if not keep:
        return False
    # Claim the member's mail slot first, so that two beats running at once send one mail.
    claimed = CommunityProfile.objects.filter(pk=profile.pk, last_mailed_at=last).update(
        last_mailed_at=moment
    )
    if not claimed:
        return False
    slug = member.workspace.slug
    with translation.override(mail_language(member)):
        items = [
            MailItem(
                text=notification_text(n),
                url=_absolute(reverse("community:notification", args=[slug, n.pk])),
                excerpt=excerpt(n.post.body) if n.post is not None else "",
                kind_label=str(Kind(n.kind).label),
                unsubscribe_url=_unsubscribe_url(slug, member.pk, n.kind),
            )
            for n in keep[:MAIL_ITEMS_MAX]
        ]
        kinds = sorted({n.kind for n in keep})
        if len(keep) == 1:
            subject = items[0].text
        else:
            subject = _("%(count)d new notifications in the %(name)s community") % {
                "count": len(keep),
                "name": member.workspace.name,
            }
        try:
            _send(
                member=member,
                to=address,
                subject=subject,
                template="notifications",
                context={
                    "member": member,
                    "items": items,
                    "more": max(0, len(keep) - MAIL_ITEMS_MAX),
                    "kinds": [
                        {
                            "label": str(Kind(kind).label),
                            "url": _unsubscribe_url(slug, member.pk, kind),
                        }
                        for kind in kinds
                    ],
                    "notifications_url": _absolute(reverse("community:notifications", args=[slug])),
                    "settings_url": _absolute(
                        reverse("community:notification_settings", args=[slug])
                    ),
                },
                header_kind=ALL_MAIL,
            )
        except Exception:
            logger.exception("notification mail to member %s failed; it is tried again", member.pk)
            CommunityProfile.objects.filter(pk=profile.pk, last_mailed_at=moment).update(
                last_mailed_at=last
            )
            return False
    _mark((n.pk for n in keep), Notification.Email.SENT, moment)
    return True


def notifications_mail(*, now: dt.datetime | None = None) -> int:
    """The periodic mail run: each member with pending notifications whose last mail is at
    least MAIL_INTERVAL old gets one mail. Returns how many mails went out."""
    moment = now or timezone.now()
    member_ids = list(
        Notification.objects.filter(email=Notification.Email.PENDING)
        .exclude(recipient__community__last_mailed_at__gt=moment - MAIL_INTERVAL)
        .order_by()
        .values_list("recipient_id", flat=True)
        .distinct()[:MAIL_RECIPIENTS_PER_RUN]
    )
    sent = 0
    for member_id in member_ids:
        sent += member_notifications_mail(member_id=member_id, now=moment)
    return sent


# --------------------------------------------------------------------------- digests


def digest_threads(
    *, member: Member, since: dt.datetime, now: dt.datetime, limit: int = DIGEST_THREADS
) -> list[Thread]:
    """The most active threads the member may read since `since`: most new visible posts
    first, each with `new_posts` set."""
    posts_since = Q(
        posts__created_at__gt=since, posts__created_at__lte=now, posts__hidden_at__isnull=True
    )
    return list(
        readable_threads(member.workspace_id, member)
        .filter(hidden_at__isnull=True, last_posted_at__gt=since)
        .annotate(new_posts=Count("posts", filter=posts_since))
        .filter(new_posts__gt=0)
        .select_related("space")
        .order_by("-new_posts", "-last_posted_at", "pk")[:limit]
    )


def _digest_due(now: dt.datetime) -> QuerySet[CommunityProfile]:
    due = Q()
    for digest, period in DIGEST_PERIODS.items():
        due |= (
            Q(digest=digest)
            & (Q(last_digest_at__isnull=True) | Q(last_digest_at__lte=now - period))
            # Members who were around during the period saw it for themselves.
            & (Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=now - period))
            & (Q(member__last_seen__isnull=True) | Q(member__last_seen__lt=now - period))
        )
    alive = Q(last_seen_at__gte=now - INACTIVE_AFTER) | Q(
        member__last_seen__gte=now - INACTIVE_AFTER
    )
    return CommunityProfile.objects.filter(
        due, alive, member__merged_into__isnull=True, member__erased_at__isnull=True
    )


def member_digest_send(*, profile_id: int, now: dt.datetime | None = None) -> bool:
    """Send one member their digest if it is due and there is something to tell; the
    period counts from this run either way. Returns whether a mail went out."""
    moment = now or timezone.now()
    profile = (
        _digest_due(moment).select_related("member", "member__workspace").filter(pk=profile_id)
    ).first()
    if profile is None:
        return False
    member = profile.member
    period = DIGEST_PERIODS[CommunityProfile.Digest(profile.digest)]
    last = profile.last_digest_at
    claimed = CommunityProfile.objects.filter(pk=profile.pk, last_digest_at=last).update(
        last_digest_at=moment
    )
    if not claimed:
        return False
    since = max(last, moment - period) if last is not None else moment - period
    address = member_email(member)
    threads = digest_threads(member=member, since=since, now=moment) if address else []
    if not threads:
        return False
    slug = member.workspace.slug
    with translation.override(mail_language(member)):
        subject = _("Popular in the %(name)s community") % {"name": member.workspace.name}
        rows = [
            {
                "thread": thread,
                "url": _absolute(reverse("community:thread", args=[slug, thread.pk])),
            }
            for thread in threads
        ]
        try:
            _send(
                member=member,
                to=address,
                subject=subject,
                template="digest",
                context={
                    "member": member,
                    "rows": rows,
                    "daily": profile.digest == CommunityProfile.Digest.DAILY,
                    "settings_url": _absolute(
                        reverse("community:notification_settings", args=[slug])
                    ),
                },
                header_kind=DIGEST,
            )
        except Exception:
            logger.exception("digest mail to member %s failed; it is tried again", member.pk)
            CommunityProfile.objects.filter(pk=profile.pk, last_digest_at=moment).update(
                last_digest_at=last
            )
            return False
    return True


def digests_send(*, now: dt.datetime | None = None) -> int:
    """The periodic digest run: every member whose daily or weekly digest is due."""
    moment = now or timezone.now()
    ids = list(_digest_due(moment).order_by("pk").values_list("pk", flat=True)[:5000])
    return sum(member_digest_send(profile_id=pk, now=moment) for pk in ids)
