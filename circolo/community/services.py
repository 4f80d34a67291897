"""Writes of the community: spaces, threads, replies, edits, reactions, accepted answers.

Each write checks who may do it, keeps the row and records its activity through
activity.services in the same transaction (source "community", so a replay records nothing
twice). Errors are CommunityError naming the field and saying why, in the user's language.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from circolo.activity.services import activity_record
from circolo.core.audit import audit_record
from circolo.core.models import Role, Workspace, WorkspaceRole
from circolo.core.services import user_has_verified_email
from circolo.people.models import Member
from circolo.people.normalise import InputError, normalise_tag
from circolo.people.services import IdentityIn, MemberAttrs, member_resolve

from .markdown import POST_MAX_CHARS, render
from .models import Flag, Post, PostRevision, Reaction, Space, Thread
from .models.forum import ContentKind
from .profiles import profile_ensure
from .selectors import member_is_staff, member_moderates, space_readable
from .signals import post_removed, post_restored

if TYPE_CHECKING:  # community.safety imports this module's errors: typing only here
    from .safety import Screening

ACTIVITY_SOURCE = "community"
CHANNEL = "community"
TITLE_MAX = 200
TAGS_MAX = 5
# Posting limits (seconds between two posts, posts and threads per rolling day, links,
# images and mentions per post) depend on the author's trust level: community.trust.LIMITS.
# Open flags from different members that hide a post until a moderator decides.
FLAGS_TO_HIDE = 3
SKUS_MAX = 10


class CommunityError(ValueError):
    """A community write that cannot be done; `field` names the input, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RateLimited(CommunityError):
    """Too many posts too fast: `retry_after` seconds until the next one is accepted."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            "body",
            _("You are posting faster than the community allows: try again in %(n)d minute(s).")
            % {"n": minutes},
        )
        self.retry_after = retry_after


class NotFound(CommunityError):
    """The thing does not exist for this member (or they may not see it): pages answer 404."""

    def __init__(self) -> None:
        super().__init__("", _("Not found."))


# --------------------------------------------------------------------------- spaces


def space_create(
    *,
    workspace: Workspace,
    actor: Any,
    name: str,
    slug: str = "",
    description: str = "",
    guidelines: str = "",
    language: str = "",
    visibility: str = Space.Visibility.PUBLIC,
    segment: dict[str, Any] | None = None,
    parent: Space | None = None,
) -> Space:
    """A new space; audited. A segment space needs a rule (tags and/or SKUs)."""
    name = " ".join(str(name).split())
    if not name:
        raise CommunityError("name", _("Give the space a name."))
    if len(name) > 120:
        raise CommunityError("name", _("A name has at most 120 characters."))
    slug = slugify(slug or name)[:60] or "space"
    if Space.objects.filter(workspace=workspace, slug=slug).exists():
        raise CommunityError("slug", _("Another space already uses this address."))
    if visibility not in Space.Visibility.values:
        raise CommunityError("visibility", _("Choose who can read the space."))
    rule = _segment_rule(segment or {})
    if visibility == Space.Visibility.SEGMENT and not any(rule.values()):
        raise CommunityError(
            "segment", _("Name the tags or products whose members may read this space.")
        )
    if parent is not None:
        if parent.workspace_id != workspace.pk:
            raise NotFound()
        if parent.parent_id is not None:
            raise CommunityError("parent", _("A sub-group cannot have sub-groups of its own."))
    space = Space.objects.create(
        workspace=workspace,
        parent=parent,
        slug=slug,
        name=name,
        description=str(description).strip(),
        guidelines=str(guidelines).strip(),
        language=str(language).strip()[:16],
        visibility=visibility,
        segment=rule if visibility == Space.Visibility.SEGMENT else {},
    )
    audit_record(workspace=workspace, actor=actor, action="space.create", target=space)
    return space


def _segment_rule(raw: dict[str, Any]) -> dict[str, list[str]]:
    tags = raw.get("tags", [])
    skus = raw.get("skus", [])
    if not isinstance(tags, list | tuple) or not isinstance(skus, list | tuple):
        raise CommunityError("segment", _("A segment is a list of tags and a list of SKUs."))
    try:
        clean_tags = sorted({normalise_tag(str(tag)) for tag in tags})
    except InputError as error:
        raise CommunityError("segment", error.message) from None
    clean_skus = sorted({str(sku).strip()[:100] for sku in skus if str(sku).strip()})
    return {"tags": clean_tags, "skus": clean_skus}


# --------------------------------------------------------------------------- members


def member_for_user(*, workspace: Workspace, user: Any) -> Member:
    """The signed-in user's member in this community, joined on first use: their verified
    email resolves them (so a customer already known from the store keeps their history),
    they get the workspace's member role if they had none, and a "signup" activity."""
    existing = Member.objects.filter(
        workspace=workspace, user=user, merged_into__isnull=True
    ).first()
    if existing is not None:
        return existing
    verified = user_has_verified_email(user=user, email=user.email)
    with transaction.atomic():
        member = member_resolve(
            workspace=workspace,
            identities=[
                IdentityIn(
                    channel=CHANNEL,
                    kind="email",
                    value=user.email,
                    verified=verified,
                    source="signup",
                )
            ],
            attrs=MemberAttrs(display_name=user.get_full_name() or user.email.split("@")[0]),
        ).member
        if member.user_id is None:
            Member.objects.filter(pk=member.pk).update(user=user)
            member.user = user
        WorkspaceRole.objects.get_or_create(
            workspace=workspace, user=user, defaults={"role": Role.MEMBER}
        )
        profile_ensure(member)
        activity_record(
            workspace=workspace,
            member=member,
            kind="signup",
            channel=CHANNEL,
            occurred_at=timezone.now(),
            source=ACTIVITY_SOURCE,
            source_id=f"signup:{member.pk}",
        )
    return member


# --------------------------------------------------------------------------- threads and posts


def _author_check(space: Space, author: Member) -> bool:
    """The author may write in the space; returns whether they post as staff."""
    if author.workspace_id != space.workspace_id or author.merged_into_id is not None:
        raise NotFound()
    if author.erased_at is not None:
        raise CommunityError("author", _("This member's account was erased."))
    staff = member_is_staff(author)
    if not space_readable(space, author, staff=staff):
        raise NotFound()
    if space.archived:
        raise CommunityError("space", _("This space is archived: nothing new can be posted."))
    if not staff:
        _sanction_check(author)
    return staff


def _sanction_check(member: Member) -> None:
    # community.safety raises this module's errors, so it is imported when first needed.
    from .safety import sanction_check

    sanction_check(member)


def _rate_check(author: Member, *, thread: bool, now: dt.datetime) -> None:
    """RateLimited when the author (not on the team) posts too fast or too much today for
    their trust level."""
    from .trust import limits_for

    limits = limits_for(profile_ensure(author).trust_level)
    recent = Post.objects.filter(
        workspace_id=author.workspace_id,
        author=author,
        created_at__gt=now - dt.timedelta(days=1),
        created_at__lte=now,
    )
    last = recent.order_by("-created_at").values_list("created_at", flat=True).first()
    interval = limits.post_interval_seconds
    if last is not None and (now - last).total_seconds() < interval:
        raise RateLimited(interval - int((now - last).total_seconds()))
    limit, counted = (
        (limits.threads_per_day, recent.filter(number=1))
        if thread
        else (
            limits.posts_per_day,
            recent,
        )
    )
    times = list(counted.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(times) >= limit:
        # The oldest of the day's last `limit` posts leaves the window first.
        raise RateLimited(int((times[-1] + dt.timedelta(days=1) - now).total_seconds()) + 1)


def _screen(
    author: Member, staff: bool, body: str, *, title: str = "", new: bool = True, now: dt.datetime
) -> Screening:
    """community.safety's screening of a post before it is written (a Screening)."""
    from .safety import post_screen

    level = profile_ensure(author).trust_level
    return post_screen(
        author=author, staff=staff, level=level, body=body, title=title, new=new, now=now
    )


def _trusted(author: Member, staff: bool) -> bool:
    """Links in the author's posts carry no nofollow: the team and members from TL2 on."""
    from .trust import links_trusted

    return staff or links_trusted(profile_ensure(author).trust_level)


def _screened(post: Post, screening: Screening) -> None:
    from .safety import screening_apply

    screening_apply(post=post, screening=screening)


def _trust_check(member: Member, now: dt.datetime | None = None) -> None:
    from .trust import trust_check

    trust_check(member=member, now=now)


def body_length_check(text: str) -> None:
    """CommunityError when a post's text is longer than a post may be."""
    if len(text) > POST_MAX_CHARS:
        raise CommunityError(
            "body",
            _("A post has at most %(limit)s characters; this one has %(count)s.")
            % {"limit": f"{POST_MAX_CHARS:,}", "count": f"{len(text):,}"},
        )


def _body(body: str) -> str:
    text = str(body).strip()
    if not text:
        raise CommunityError("body", _("Write something first."))
    body_length_check(text)
    return text


def _tags(tags: Iterable[str]) -> list[str]:
    try:
        clean = list(dict.fromkeys(normalise_tag(str(tag)) for tag in tags))
    except InputError as error:
        raise CommunityError("tags", error.message) from None
    if len(clean) > TAGS_MAX:
        raise CommunityError(
            "tags", _("A thread has at most %(limit)d tags.") % {"limit": TAGS_MAX}
        )
    return clean


def _skus(skus: Iterable[str]) -> list[str]:
    clean = list(dict.fromkeys(str(sku).strip() for sku in skus if str(sku).strip()))
    if len(clean) > SKUS_MAX or any(len(sku) > 100 for sku in clean):
        raise CommunityError(
            "skus", _("A thread is about at most %(limit)d products.") % {"limit": SKUS_MAX}
        )
    return clean


def _record(
    post: Post,
    kind: str,
    member: Member,
    source_id: str,
    *,
    at: dt.datetime | None = None,
    **properties: Any,
) -> None:
    activity_record(
        workspace=post.thread.space.workspace,
        member=member,
        kind=kind,
        channel=CHANNEL,
        occurred_at=at or post.created_at,
        source=ACTIVITY_SOURCE,
        source_id=source_id,
        properties={"thread": post.thread_id, "space": post.thread.space_id, **properties},
    )


def thread_create(
    *,
    space: Space,
    author: Member,
    title: str,
    body: str,
    kind: str = Thread.Kind.DISCUSSION,
    tags: Sequence[str] = (),
    skus: Sequence[str] = (),
    language: str = "",
    content_kind: str = "",
    now: dt.datetime | None = None,
) -> Thread:
    """A new thread with its opening post; records a "post" activity. `content_kind`
    (value or promotion, for the content calendar) is kept for the team's threads only."""
    staff = _author_check(space, author)
    profile_ensure(author)
    title = " ".join(str(title).split())
    if not title:
        raise CommunityError("title", _("Give the thread a title."))
    if len(title) > TITLE_MAX:
        raise CommunityError(
            "title", _("A title has at most %(limit)d characters.") % {"limit": TITLE_MAX}
        )
    if kind not in Thread.Kind.values:
        raise CommunityError("kind", _("Choose a discussion or a question."))
    text = _body(body)
    moment = now or timezone.now()
    if not staff:
        _rate_check(author, thread=True, now=moment)
    screening = _screen(author, staff, text, title=title, now=moment)
    title, text = screening.title, screening.body
    with transaction.atomic():
        thread = Thread.objects.create(
            workspace_id=space.workspace_id,
            space=space,
            author=author,
            kind=kind,
            title=title,
            # A thread whose opening post waits for approval is hidden with it.
            hidden_at=moment if screening.hold else None,
            tags=_tags(tags),
            skus=_skus(skus),
            language=(language or space.language)[:16],
            content_kind=content_kind if staff and content_kind in ContentKind.values else "",
            created_at=moment,
            last_posted_at=moment,
        )
        post = Post.objects.create(
            workspace_id=space.workspace_id,
            thread=thread,
            author=author,
            number=1,
            body=text,
            html=render(text, trusted=_trusted(author, staff)),
            staff=staff,
            created_at=moment,
            **screening.hidden(moment),
        )
        _screened(post, screening)
        _record(post, "post", author, f"post:{post.pk}", question=kind == Thread.Kind.QUESTION)
        _after_post(post)
    return thread


def reply_create(
    *, thread: Thread, author: Member, body: str, now: dt.datetime | None = None
) -> Post:
    """A reply at the end of the thread; records a "reply" activity."""
    staff = _author_check(thread.space, author)
    profile_ensure(author)
    if thread.hidden_at is not None and not staff:
        raise NotFound()
    if thread.closed:
        raise CommunityError("thread", _("This thread is closed to new replies."))
    text = _body(body)
    moment = now or timezone.now()
    if not staff:
        _rate_check(author, thread=False, now=moment)
    screening = _screen(author, staff, text, now=moment)
    text = screening.body
    trusted = _trusted(author, staff)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                # Numbers are per thread: lock it so two replies cannot take the same one.
                locked = Thread.objects.select_for_update(no_key=True).get(pk=thread.pk)
                last = Post.objects.filter(thread=locked).aggregate(n=Max("number"))["n"] or 0
                post = Post.objects.create(
                    workspace_id=locked.workspace_id,
                    thread=locked,
                    author=author,
                    number=last + 1,
                    body=text,
                    html=render(text, trusted=trusted),
                    staff=staff,
                    created_at=moment,
                    **screening.hidden(moment),
                )
                _screened(post, screening)
                locked.reply_count = last
                locked.last_posted_at = max(locked.last_posted_at, moment)
                locked.save(update_fields=["reply_count", "last_posted_at"])
                post.thread = locked
                _record(post, "reply", author, f"post:{post.pk}")
                _after_post(post)
                _trust_check(author, moment)
                thread.reply_count, thread.last_posted_at = (
                    locked.reply_count,
                    locked.last_posted_at,
                )
                return post
        except IntegrityError:
            continue  # SQLite has no row locks: another reply took the number, try again
    raise CommunityError("thread", _("The thread is busy: try again in a moment."))


def _page_changed(thread_id: int) -> None:
    """Once the transaction commits, cached copies of the thread's posts are stale."""
    from .pagecache import thread_changed

    transaction.on_commit(lambda: thread_changed(thread_id))


def _after_post(post: Post) -> None:
    """What follows a new or changed post, inside its transaction: the search index is
    brought up to date, and after commit the people concerned are told (a post waiting for
    approval is handled again when a moderator lets it through)."""
    from circolo.core.background import enqueue_on_commit

    from .search import post_index
    from .tasks import post_fanout_task

    post_index(post=post)
    enqueue_on_commit(post_fanout_task, post.pk)
    _page_changed(post.thread_id)


def post_edit(*, post: Post, editor: Member, body: str, now: dt.datetime | None = None) -> Post:
    """Change a post's text (its author, or staff and the space's moderators); the earlier
    text is kept as a revision."""
    space = post.thread.space
    staff = member_is_staff(editor)
    moderator = member_moderates(editor, space, staff=staff)
    if editor.workspace_id != post.workspace_id:
        raise NotFound()
    if editor.pk != post.author_id and not moderator:
        raise CommunityError("post", _("Only the author or a moderator can edit this post."))
    if not staff:
        _sanction_check(editor)
    text = _body(body)
    if text == post.body:
        return post
    moment = now or timezone.now()
    # The text is screened as the author's (their level's limits); a moderator's edit is not
    # held for approval.
    screening = _screen(post.author, staff or moderator, text, new=False, now=moment)
    text = screening.body
    with transaction.atomic():
        PostRevision.objects.create(
            workspace_id=post.workspace_id,
            post=post,
            body=post.body,
            edited_by=editor,
            created_at=moment,
        )
        post.body = text
        post.html = render(text, trusted=_trusted(post.author, post.staff))
        post.edited_at = moment
        fields = ["body", "html", "edited_at"]
        if post.hidden_at is None:
            for name, value in screening.hidden(moment).items():
                setattr(post, name, value)
                fields.append(name)
        post.save(update_fields=fields)
        _screened(post, screening)
        _after_post(post)
    return post


# --------------------------------------------------------------------------- reactions


def reaction_add(*, post: Post, member: Member, emoji: str, now: dt.datetime | None = None) -> bool:
    """React to a post (once per emoji); True when new. Records "reaction_given" for the
    member and "reaction_received" for the author, once per post, member and emoji even if
    the reaction is taken back and given again. Nobody reacts to their own post."""
    if emoji not in Reaction.Emoji.values:
        raise CommunityError("emoji", _("Choose one of the offered reactions."))
    if member.workspace_id != post.workspace_id or not space_readable(post.thread.space, member):
        raise NotFound()
    if post.hidden_at is not None:
        raise NotFound()
    if member.pk == post.author_id:
        raise CommunityError("emoji", _("You cannot react to your own post."))
    _sanction_check(member)
    with transaction.atomic():
        _reaction, created = Reaction.objects.get_or_create(
            workspace_id=post.workspace_id, post=post, member=member, emoji=emoji
        )
        if created:
            key = f"{post.pk}:{member.pk}:{emoji}"
            moment = now or timezone.now()
            for kind, who in (("reaction_given", member), ("reaction_received", post.author)):
                activity_record(
                    workspace=post.thread.space.workspace,
                    member=who,
                    kind=kind,
                    channel=CHANNEL,
                    occurred_at=moment,
                    source=ACTIVITY_SOURCE,
                    source_id=f"{kind}:{key}",
                    properties={"post": post.pk, "thread": post.thread_id, "emoji": emoji},
                )
            _trust_check(member, moment)
            _trust_check(post.author, moment)
            from .notifications import notify

            notify(
                recipient=post.author,
                kind="reaction",
                key=f"reaction:{post.pk}:{member.pk}",
                actor=member,
                post=post,
                data={"emoji": emoji},
                now=moment,
            )
            _page_changed(post.thread_id)
    return created


def reaction_remove(*, post: Post, member: Member, emoji: str) -> bool:
    """Take a reaction back; True when there was one."""
    deleted, _counts = Reaction.objects.filter(post=post, member=member, emoji=emoji).delete()
    if deleted:
        _page_changed(post.thread_id)
    return deleted > 0


# --------------------------------------------------------------------------- Q&A


def answer_accept(
    *, thread: Thread, post: Post, actor: Member, now: dt.datetime | None = None
) -> Thread:
    """Mark a reply as the accepted answer of a question (the asker, staff or a moderator of
    the space); records "accepted_answer" for the reply's author unless they asked."""
    if actor.workspace_id != thread.workspace_id or post.thread_id != thread.pk:
        raise NotFound()
    if thread.kind != Thread.Kind.QUESTION:
        raise CommunityError("thread", _("Only a question has an accepted answer."))
    if post.number == 1:
        raise CommunityError("post", _("The question itself cannot be its answer."))
    if post.hidden_at is not None:
        raise CommunityError("post", _("A hidden post cannot be the accepted answer."))
    if actor.pk != thread.author_id and not member_moderates(actor, thread.space):
        raise CommunityError(
            "post", _("Only the person who asked or a moderator can accept an answer.")
        )
    with transaction.atomic():
        Thread.objects.filter(pk=thread.pk).update(accepted_post=post)
        thread.accepted_post = post
        if post.author_id != thread.author_id:
            post.thread = thread
            _record(
                post,
                "accepted_answer",
                post.author,
                f"accepted:{thread.pk}:{post.pk}",
                at=now or timezone.now(),
            )
        from .notifications import notify

        notify(
            recipient=post.author,
            kind="accepted",
            key=f"accepted:{thread.pk}:{post.pk}",
            actor=actor,
            post=post,
            now=now,
        )
    return thread


# --------------------------------------------------------------------------- moderation


def post_flag(*, post: Post, member: Member, reason: str, note: str = "") -> Flag:
    """Report a post. A moderator's flag, or FLAGS_TO_HIDE members' flags, hide it until a
    moderator decides. Flagging twice changes nothing; nobody flags their own post."""
    if reason not in Flag.Reason.values:
        raise CommunityError("reason", _("Choose why you are flagging this post."))
    if member.workspace_id != post.workspace_id or not space_readable(post.thread.space, member):
        raise NotFound()
    if member.pk == post.author_id:
        raise CommunityError("reason", _("You cannot flag your own post."))
    _sanction_check(member)
    with transaction.atomic():
        flag, created = Flag.objects.get_or_create(
            workspace_id=post.workspace_id,
            post=post,
            member=member,
            defaults={"reason": reason, "note": str(note).strip()[:500]},
        )
        if not created:
            return flag
        activity_record(
            workspace=post.thread.space.workspace,
            member=member,
            kind="flag",
            channel=CHANNEL,
            occurred_at=timezone.now(),
            source=ACTIVITY_SOURCE,
            source_id=f"flag:{flag.pk}",
            properties={"post": post.pk, "reason": reason},
        )
        open_flags = Flag.objects.filter(post=post, outcome=Flag.Outcome.OPEN).count()
        if post.hidden_at is None and (
            open_flags >= FLAGS_TO_HIDE or member_moderates(member, post.thread.space)
        ):
            post.hidden_at = timezone.now()
            post.hidden_reason = "flagged"
            post.save(update_fields=["hidden_at", "hidden_reason"])
            _page_changed(post.thread_id)
    return flag


def post_moderate(*, post: Post, moderator: Member, action: str, reason: str = "") -> Post:
    """A moderator's decision on a post: "hide" (flags upheld) or "show" (flags dismissed).
    Audited with the reason; the post's author is never told who flagged."""
    if moderator.workspace_id != post.workspace_id:
        raise NotFound()
    if not member_moderates(moderator, post.thread.space):
        raise CommunityError("action", _("Only a moderator can do this."))
    if action not in ("hide", "show"):
        raise CommunityError("action", _("Choose to hide or to show the post."))
    now = timezone.now()
    with transaction.atomic():
        if action == "hide":
            post.hidden_at = post.hidden_at or now
            post.hidden_reason = str(reason).strip()[:200] or "moderator"
            outcome = Flag.Outcome.UPHELD
        else:
            post.hidden_at = None
            post.hidden_reason = ""
            outcome = Flag.Outcome.DISMISSED
        post.save(update_fields=["hidden_at", "hidden_reason"])
        _page_changed(post.thread_id)
        Flag.objects.filter(post=post, outcome=Flag.Outcome.OPEN).update(
            outcome=outcome, decided_at=now
        )
        (post_removed if action == "hide" else post_restored).send(
            sender=Post,
            workspace_id=post.workspace_id,
            post_id=post.pk,
            author_id=post.author_id,
            moderator_user_id=moderator.user_id,
        )
        audit_record(
            workspace=post.thread.space.workspace,
            actor=moderator.user,
            action=f"post.{action}",
            target=post,
            data={"thread": post.thread_id, "number": post.number, "reason": reason[:200]},
        )
    return post


def _held_check(post: Post, moderator: Member) -> None:
    """The post waits for approval and `moderator` may decide on it."""
    from .safety import APPROVAL

    if moderator.workspace_id != post.workspace_id:
        raise NotFound()
    if not member_moderates(moderator, post.thread.space):
        raise CommunityError("action", _("Only a moderator can do this."))
    if post.hidden_at is None or post.hidden_reason != APPROVAL:
        raise CommunityError("action", _("This post is not waiting for approval."))


def post_approve(*, post: Post, moderator: Member) -> Post:
    """Let through a post held for approval (a watched word or a spam check): it is shown,
    its thread too if it opens one, its automatic flags are closed, and what follows a new
    post happens now. Audited; the author is told."""
    from .notifications import notify

    _held_check(post, moderator)
    now = timezone.now()
    with transaction.atomic():
        post.hidden_at = None
        post.hidden_reason = ""
        post.save(update_fields=["hidden_at", "hidden_reason"])
        if post.number == 1 and post.thread.hidden_at is not None:
            Thread.objects.filter(pk=post.thread_id).update(hidden_at=None)
            post.thread.hidden_at = None
        Flag.objects.filter(post=post, outcome=Flag.Outcome.OPEN).update(
            outcome=Flag.Outcome.DISMISSED, decided_at=now
        )
        audit_record(
            workspace=post.thread.space.workspace,
            actor=moderator.user,
            action="post.approve",
            target=post,
            data={"thread": post.thread_id, "number": post.number},
        )
        notify(
            recipient=post.author,
            kind="moderation",
            key=f"moderation:{post.pk}:approved",
            actor=moderator,
            post=post,
            data={"decision": "approved"},
            now=now,
        )
        _after_post(post)
    return post


def post_reject(*, post: Post, moderator: Member, reason: str = "") -> Post:
    """Refuse a post held for approval: it stays hidden for good (reason "rejected") and its
    flags are upheld. Audited with the reason; the author is told."""
    from .notifications import notify

    _held_check(post, moderator)
    now = timezone.now()
    reason = str(reason).strip()[:200]
    with transaction.atomic():
        post.hidden_reason = "rejected"
        post.save(update_fields=["hidden_reason"])
        Flag.objects.filter(post=post, outcome=Flag.Outcome.OPEN).update(
            outcome=Flag.Outcome.UPHELD, decided_at=now
        )
        audit_record(
            workspace=post.thread.space.workspace,
            actor=moderator.user,
            action="post.reject",
            target=post,
            data={"thread": post.thread_id, "number": post.number, "reason": reason},
        )
        notify(
            recipient=post.author,
            kind="moderation",
            key=f"moderation:{post.pk}:rejected",
            actor=moderator,
            post=post,
            data={"decision": "rejected", "reason": reason},
            now=now,
        )
    return post
