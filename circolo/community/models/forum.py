"""The community hosted on the store's own site: spaces, threads, posts and reactions.

Authors are Members (people.Member); a member who is also on the brand's team posts as
staff. Every write goes through community.services, which records the matching activity.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member


class Space(models.Model):
    """A place for one kind of conversation, with its own audience, language and guidelines."""

    class Visibility(models.TextChoices):
        PUBLIC = "public", _("Public: anyone can read")
        MEMBERS = "members", _("Members only: signed-in members can read")
        SEGMENT = "segment", _("A segment: only the members who match its rule")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    # Sub-groups by interest live inside a space and see at most what the space lets in.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    slug = models.SlugField(_("address"), max_length=60)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    guidelines = models.TextField(_("guidelines"), blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    visibility = models.CharField(
        _("who can read"), max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    # For SEGMENT spaces: {"tags": [...], "skus": [...]}: members with any of these tags, or
    # who bought (and kept) any of these products, get in.
    segment = models.JSONField(default=dict, blank=True)
    moderators = models.ManyToManyField(Member, blank=True, related_name="+")
    position = models.IntegerField(default=0)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="uniq_space_slug"),
        ]
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class ContentKind(models.TextChoices):
    VALUE = "value", _("Value: help, stories, how-tos")
    PROMOTION = "promotion", _("Promotion: offers, launches, sales")


class Thread(models.Model):
    class Kind(models.TextChoices):
        DISCUSSION = "discussion", _("Discussion")
        QUESTION = "question", _("Question")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="threads")
    author = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DISCUSSION)
    title = models.CharField(_("title"), max_length=200)
    tags = models.JSONField(default=list, blank=True)
    # Products the thread is about, by SKU: the product's page lists the thread, and a post
    # by someone who bought one of them shows "verified owner".
    skus = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=16, blank=True)
    pinned = models.BooleanField(default=False)
    # An announcement is a staff thread shown at the top of the community's home page too.
    announcement = models.BooleanField(default=False)
    # What a team thread offers, for the content calendar's 80/20 rule: value (help, stories,
    # how-tos) or promotion (offers, launches). Empty for members' threads.
    content_kind = models.CharField(max_length=10, choices=ContentKind.choices, blank=True)
    closed = models.BooleanField(default=False)
    hidden_at = models.DateTimeField(null=True, blank=True)
    accepted_post = models.ForeignKey(
        "Post", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply_count = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    last_posted_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["space", "-pinned", "-last_posted_at"], name="thread_space_recent"
            ),
            models.Index(fields=["workspace", "kind", "accepted_post"], name="thread_ws_kind"),
        ]

    def __str__(self) -> str:
        return self.title


class Post(models.Model):
    """The opening post of a thread or a reply. `body` is the author's Markdown; `html` is
    its sanitised rendering, made when the post is written (and again on an edit)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    number = models.IntegerField()  # 1 for the opening post, then 2, 3, ... per thread
    body = models.TextField()
    html = models.TextField()
    staff = models.BooleanField(default=False)
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "number"], name="uniq_post_number"),
        ]
        indexes = [models.Index(fields=["workspace", "author", "created_at"])]

    def __str__(self) -> str:
        return f"{self.thread_id}#{self.number}"


class PostRevision(models.Model):
    """A post's earlier text, kept at each edit (the edit history)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="revisions")
    body = models.TextField()
    edited_by = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()


class Reaction(models.Model):
    class Emoji(models.TextChoices):
        LIKE = "like", "👍"
        HEART = "heart", "❤️"
        LAUGH = "laugh", "😄"
        WOW = "wow", "😮"
        THANKS = "thanks", "🙏"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="reactions")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=10, choices=Emoji.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["post", "member", "emoji"], name="uniq_reaction_per_member"
            ),
        ]


class Flag(models.Model):
    """A member's report that a post breaks the rules. Enough open flags hide the post until
    a moderator decides; flags are visible to moderators only."""

    class Reason(models.TextChoices):
        SPAM = "spam", _("Spam or advertising")
        OFFENSIVE = "offensive", _("Rude or offensive")
        OFF_TOPIC = "off_topic", _("Off topic")
        OTHER = "other", _("Something else")
        # Raised by the system, not a member: a watched word or a spam check matched.
        AUTOMATIC = "automatic", _("Flagged automatically")

    class Outcome(models.TextChoices):
        OPEN = "open", _("Waiting for a moderator")
        UPHELD = "upheld", _("Upheld: the post stays hidden")
        DISMISSED = "dismissed", _("Dismissed: the post is shown")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="flags")
    # None for an automatic flag (reason AUTOMATIC; the note says what matched).
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=10, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["post", "member"], name="uniq_flag_per_member"),
        ]
        indexes = [models.Index(fields=["workspace", "outcome"], name="flag_ws_outcome")]
