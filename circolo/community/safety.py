"""Safety: screening a post before it is written, and sanctions (silence, suspend).

Screening (`post_screen`) runs in community.services before any row is written:
- watched words, in the title and the text, case- and accent-insensitive, on word
  boundaries (`*` matches any letters); a word in a CJK script matches anywhere, since
  those scripts do not put spaces between words. Block refuses the post without showing
  the list; censor replaces the word by ■■■; approve saves the post hidden until a moderator
  approves it; flag publishes it and puts it in the moderation queue.
- the limits of the author's trust level (links, images, mentions per post);
- spam checks: the same text twice within a day is refused; a new (TL0) member linking to
  the same site in 3 or more posts within a day is held for approval (links beyond the
  level's limit are refused outright: the member can fix that themselves).
The team is exempt from limits, spam checks, approval and automatic flags; block and
censor apply to everyone.

A silenced member reads but may not post, react, flag or RSVP; a suspended one is also
treated as a signed-out visitor. Every sanction and its lifting is audited.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.people.models import Member

from .markdown import links_and_images
from .mentions import mentioned_handles
from .models import Flag, Post, Sanction, WatchedWord
from .selectors import member_is_staff
from .services import CommunityError, NotFound
from .trust import limits_for

CENSORED = "■■■"
APPROVAL = "approval"  # Post.hidden_reason of a post waiting for a moderator's approval
WORD_MAX = 100
SANCTION_DAYS_MAX = 3650
# Turned off by the test suite's fixture unless a test asks for the real limits.
SPAM_CHECKS = True
DUPLICATE_WINDOW = dt.timedelta(hours=24)
LINK_SPAM_WINDOW = dt.timedelta(hours=24)
LINK_SPAM_POSTS = 3  # posts linking to the same site within the window (TL0 only)

# Scripts written without spaces between words: a watched word there matches anywhere.
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def _fold(text: str) -> tuple[str, list[int]]:
    """The text without case or accents, and for each of its characters the index of the
    original character it came from (so a match can be censored in the original)."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKD", char):
            if unicodedata.combining(part):
                continue
            for folded in part.casefold():
                out.append(folded)
                origin.append(index)
    return "".join(out), origin


def _normalise(text: str) -> str:
    return " ".join(_fold(text)[0].split())


def word_pattern(word: str) -> re.Pattern[str]:
    """The regular expression a watched word stands for, matched against folded text."""
    folded = _normalise(word)
    body = r"\w*".join(
        r"\s+".join(re.escape(piece) for piece in part.split(" ")) for part in folded.split("*")
    )
    if _CJK_RE.search(folded):
        return re.compile(body)
    return re.compile(rf"(?<!\w){body}(?!\w)")


@dataclass(frozen=True)
class WordMatch:
    word: WatchedWord
    start: int  # in the original text
    end: int


def watched_matches(text: str, words: list[WatchedWord]) -> list[WordMatch]:
    """Where the watched words occur in the text, in the original text's positions."""
    if not text or not words:
        return []
    folded, origin = _fold(text)
    found: list[WordMatch] = []
    for word in words:
        for match in word_pattern(word.word).finditer(folded):
            if match.end() > match.start():
                found.append(WordMatch(word, origin[match.start()], origin[match.end() - 1] + 1))
    return found


def _censor(text: str, matches: list[WordMatch]) -> str:
    spans = sorted((m.start, m.end) for m in matches if m.word.action == WatchedWord.Action.CENSOR)
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    position = 0
    for start, end in merged:
        out += [text[position:start], CENSORED]
        position = end
    out.append(text[position:])
    return "".join(out)


@dataclass
class Screening:
    """What screening decided: the text to store (censored) and what follows the write."""

    title: str
    body: str
    hold: bool = False  # save the post hidden until a moderator approves it
    hold_reasons: list[str] = field(default_factory=list)
    flag_notes: list[str] = field(default_factory=list)

    def hidden(self, now: dt.datetime) -> dict[str, Any]:
        """The fields of a held post (none for a post that is published)."""
        return {"hidden_at": now, "hidden_reason": APPROVAL} if self.hold else {}


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _limits(body: str, level: int) -> list[str]:
    """Links, images and mentions in the post (with the level's limits)."""
    limits = limits_for(level)
    links, images = links_and_images(body)
    mentions = len(mentioned_handles(body))
    if len(links) > limits.links_per_post:
        raise CommunityError(
            "body",
            ngettext(
                "At your trust level a post can hold at most %(limit)d link; this one has "
                "%(count)d.",
                "At your trust level a post can hold at most %(limit)d links; this one has "
                "%(count)d.",
                limits.links_per_post,
            )
            % {"limit": limits.links_per_post, "count": len(links)},
        )
    if images > limits.images_per_post:
        raise CommunityError(
            "body",
            ngettext(
                "At your trust level a post can show at most %(limit)d image; this one has "
                "%(count)d.",
                "At your trust level a post can show at most %(limit)d images; this one has "
                "%(count)d.",
                limits.images_per_post,
            )
            % {"limit": limits.images_per_post, "count": images},
        )
    if mentions > limits.mentions_per_post:
        raise CommunityError(
            "body",
            ngettext(
                "At your trust level a post can mention at most %(limit)d member; this one "
                "mentions %(count)d.",
                "At your trust level a post can mention at most %(limit)d members; this one "
                "mentions %(count)d.",
                limits.mentions_per_post,
            )
            % {"limit": limits.mentions_per_post, "count": mentions},
        )
    return links


def _spam(author: Member, body: str, links: list[str], level: int, now: dt.datetime) -> bool:
    """Refuse a repeated post; True when a new member's links look like link spam."""
    recent = list(
        Post.objects.filter(
            workspace_id=author.workspace_id,
            author=author,
            created_at__gt=now - max(DUPLICATE_WINDOW, LINK_SPAM_WINDOW),
            created_at__lte=now,
        )
        .order_by("-created_at")
        .values_list("body", "created_at")[:100]
    )
    text = _normalise(body)
    if any(_normalise(old) == text for old, at in recent if at > now - DUPLICATE_WINDOW):
        raise CommunityError(
            "body", _("You already posted this in the last 24 hours: write something new.")
        )
    if level > 0 or not links:
        return False
    domains = {_domain(link) for link in links} - {""}
    for domain in domains:
        earlier = sum(
            1
            for old, at in recent
            if at > now - LINK_SPAM_WINDOW
            and domain in {_domain(link) for link in links_and_images(old)[0]}
        )
        if earlier + 1 >= LINK_SPAM_POSTS:
            return True
    return False


def post_screen(
    *,
    author: Member,
    staff: bool,
    level: int,
    body: str,
    title: str = "",
    new: bool = True,
    now: dt.datetime | None = None,
) -> Screening:
    """Screen a post (and a thread's title) before it is written: raises CommunityError
    when it is refused; otherwise says what to store and whether to hold or flag it.
    `new`: a new post (an edit skips the repeat and link-spam checks)."""
    moment = now or timezone.now()
    words = list(WatchedWord.objects.filter(workspace_id=author.workspace_id))
    title_matches = watched_matches(title, words)
    body_matches = watched_matches(body, words)
    for where, text, matches in (("title", title, title_matches), ("body", body, body_matches)):
        blocked = next((m for m in matches if m.word.action == WatchedWord.Action.BLOCK), None)
        if blocked is not None:
            raise CommunityError(
                where,
                _("“%(text)s” is not allowed in this community: please rephrase.")
                % {"text": text[blocked.start : blocked.end]},
            )
    screening = Screening(title=_censor(title, title_matches), body=_censor(body, body_matches))
    if staff:
        return screening
    matched = title_matches + body_matches
    for action in (WatchedWord.Action.APPROVE, WatchedWord.Action.FLAG):
        names = list(dict.fromkeys(m.word.word for m in matched if m.word.action == action))
        if not names:
            continue
        note = _("Watched word: %(words)s") % {"words": ", ".join(names)}
        if action == WatchedWord.Action.APPROVE:
            screening.hold = True
            screening.hold_reasons.append(note)
        else:
            screening.flag_notes.append(note)
    links = _limits(screening.body, level)
    if new and SPAM_CHECKS and _spam(author, body, links, level, moment):
        screening.hold = True
        screening.hold_reasons.append(_("A new member linked to the same site in 3 posts today."))
    return screening


def screening_apply(*, post: Post, screening: Screening) -> None:
    """After the post is written: the automatic flag for watched words (in the queue)."""
    if screening.flag_notes:
        Flag.objects.create(
            workspace_id=post.workspace_id,
            post=post,
            member=None,
            reason=Flag.Reason.AUTOMATIC,
            note="; ".join(screening.flag_notes)[:500],
        )
    if screening.hold and screening.hold_reasons:
        Flag.objects.create(
            workspace_id=post.workspace_id,
            post=post,
            member=None,
            reason=Flag.Reason.AUTOMATIC,
            note="; ".join(screening.hold_reasons)[:500],
        )


# --------------------------------------------------------------------------- watched words


def watched_word_add(*, workspace: Workspace, actor: Any, word: str, action: str) -> WatchedWord:
    """Watch for a word or phrase (`*` for any letters); audited."""
    clean = " ".join(str(word).split())
    if not clean.replace("*", ""):
        raise CommunityError("word", _("Write the word or phrase to watch for."))
    if len(clean) > WORD_MAX:
        raise CommunityError(
            "word", _("A watched word has at most %(limit)d characters.") % {"limit": WORD_MAX}
        )
    if action not in WatchedWord.Action.values:
        raise CommunityError("action", _("Choose what happens when the word is used."))
    folded = _normalise(clean)
    existing = WatchedWord.objects.filter(workspace=workspace).values_list("word", flat=True)
    if any(_normalise(other) == folded for other in existing):
        raise CommunityError("word", _("This word is already watched."))
    with transaction.atomic():
        watched = WatchedWord.objects.create(
            workspace=workspace,
            word=clean,
            action=action,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            workspace=workspace,
            actor=actor,
            action="watched_word.add",
            target=watched,
            data={"word": clean, "action": action},
        )
    return watched


def watched_word_remove(*, workspace: Workspace, actor: Any, word_id: int) -> None:
    """Stop watching for a word; audited."""
    watched = WatchedWord.objects.filter(workspace=workspace, pk=word_id).first()
    if watched is None:
        raise NotFound()
    with transaction.atomic():
        audit_record(
            workspace=workspace,
            actor=actor,
            action="watched_word.remove",
            target=watched,
            data={"word": watched.word, "action": watched.action},
        )
        watched.delete()


# --------------------------------------------------------------------------- sanctions


def sanction_active(member: Member | None, *, now: dt.datetime | None = None) -> Sanction | None:
    """The member's sanction in force (a suspension before a silence), if any."""
    if member is None:
        return None
    moment = now or timezone.now()
    return (
        Sanction.objects.filter(
            member=member, lifted_at__isnull=True, starts_at__lte=moment, ends_at__gt=moment
        )
        .order_by("-kind", "-ends_at")  # "suspend" sorts after "silence"
        .first()
    )


def sanction_message(sanction: Sanction) -> str:
    """What the member is told: what, until when, and the moderators' reason."""
    until = formats.date_format(timezone.localtime(sanction.ends_at), "DATETIME_FORMAT")
    if sanction.kind == Sanction.Kind.SUSPEND:
        text = _("You are suspended from this community until %(until)s. Reason: %(reason)s")
    else:
        text = _(
            "You are silenced in this community until %(until)s: you can read, but not post, "
            "react, flag or reply to events. Reason: %(reason)s"
        )
    return text % {"until": until, "reason": sanction.reason}


def sanction_check(member: Member, *, now: dt.datetime | None = None) -> None:
    """Refuse a write by a silenced or suspended member, telling them why and until when."""
    sanction = sanction_active(member, now=now)
    if sanction is not None:
        raise CommunityError("member", sanction_message(sanction))


def sanction_create(
    *,
    member: Member,
    kind: str,
    reason: str,
    days: int,
    actor: Any,
    workspace_id: int,
    now: dt.datetime | None = None,
) -> Sanction:
    """Silence or suspend a member for `days` days with a reason they are shown; audited.
    The team cannot be sanctioned, and a member has one sanction of a kind at a time."""
    if member.workspace_id != workspace_id or member.merged_into_id is not None:
        raise NotFound()
    if kind not in Sanction.Kind.values:
        raise CommunityError("kind", _("Choose to silence or to suspend."))
    reason = " ".join(str(reason).split())
    if not reason:
        raise CommunityError("reason", _("Give a reason: the member is shown it."))
    if len(reason) > 500:
        raise CommunityError("reason", _("A reason has at most 500 characters."))
    if not 1 <= days <= SANCTION_DAYS_MAX:
        raise CommunityError(
            "days", _("The duration is 1 to %(limit)d days.") % {"limit": SANCTION_DAYS_MAX}
        )
    if member_is_staff(member):
        raise CommunityError("member", _("Members of the team cannot be silenced or suspended."))
    moment = now or timezone.now()
    current = sanction_active(member, now=moment)
    if current is not None and current.kind == kind:
        until = formats.date_format(timezone.localtime(current.ends_at), "DATETIME_FORMAT")
        raise CommunityError(
            "kind",
            _("This member already has this sanction until %(until)s: lift it first.")
            % {"until": until},
        )
    with transaction.atomic():
        sanction = Sanction.objects.create(
            workspace_id=workspace_id,
            member=member,
            kind=kind,
            reason=reason,
            starts_at=moment,
            ends_at=moment + dt.timedelta(days=days),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            workspace=member.workspace,
            actor=actor,
            action=f"sanction.{kind}",
            target=member,
            data={"sanction": sanction.pk, "days": days, "reason": reason},
        )
    return sanction


def sanction_lift(
    *, sanction: Sanction, actor: Any, workspace_id: int, now: dt.datetime | None = None
) -> Sanction:
    """End a sanction early; audited. Lifting one already over changes nothing."""
    if sanction.workspace_id != workspace_id:
        raise NotFound()
    moment = now or timezone.now()
    if sanction.lifted_at is not None or sanction.ends_at <= moment:
        return sanction
    with transaction.atomic():
        sanction.lifted_at = moment
        sanction.save(update_fields=["lifted_at"])
        audit_record(
            workspace=sanction.member.workspace,
            actor=actor,
            action="sanction.lift",
            target=sanction.member,
            data={"sanction": sanction.pk, "kind": sanction.kind},
        )
    return sanction
