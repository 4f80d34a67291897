"""A workspace's program: settings, earn rule sets, tiers and badges."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member


class Program(models.Model):
    """The loyalty settings of one workspace (created with defaults on first use)."""

    class TierBasis(models.TextChoices):
        SPEND = "spend", _("Net spend in the last 12 months")
        POINTS = "points", _("Points earned in the last 12 months")

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    enabled = models.BooleanField(_("program open to members"), default=True)
    # What 100 points are worth, in minor units of the workspace currency (finance view).
    value_per_100_minor = models.PositiveIntegerField(_("value of 100 points"), default=100)
    return_window_days = models.PositiveSmallIntegerField(_("return window (days)"), default=30)
    # 0: points never expire.
    expiry_months = models.PositiveSmallIntegerField(_("points expire after (months)"), default=12)
    tier_basis = models.CharField(
        _("tiers by"), max_length=8, choices=TierBasis.choices, default=TierBasis.SPEND
    )
    tier_keep_months = models.PositiveSmallIntegerField(_("keep a tier for (months)"), default=12)
    referral_window_days = models.PositiveSmallIntegerField(_("referral window (days)"), default=30)
    # Points for the advocate when the friend's first order passes the return window.
    referral_advocate_points = models.PositiveIntegerField(
        _("points for the advocate"), default=500
    )
    # The reward a referred friend gets at once (a first-order discount code).
    referral_friend_reward = models.ForeignKey(
        "loyalty.Reward",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reward for the friend"),
    )
    # More referral claims than this from one network address in 7 days go to review.
    referral_claims_per_address = models.PositiveSmallIntegerField(
        _("claims per network address in 7 days"), default=3
    )
    updated_at = models.DateTimeField(auto_now=True)


class RuleSet(models.Model):
    """A version of the earn rules. One is published (in force); staff edit a draft, simulate
    it over the last 90 days, then publish it. `rules` is validated by rules.rules_clean."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("In force")
        RETIRED = "retired", _("Retired")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    rules = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "version"], name="uniq_ruleset_version"),
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(status="published"),
                name="uniq_ruleset_published",
            ),
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(status="draft"),
                name="uniq_ruleset_draft",
            ),
        ]


class Tier(models.Model):
    """A level members reach by rolling 12-month spend or points, with its perks."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=60)
    # Names in other languages: {"it": "...", "zh-hans": "..."}.
    names = models.JSONField(default=dict, blank=True)
    # Spend in minor units of the workspace currency, or points (Program.tier_basis).
    threshold = models.BigIntegerField(_("threshold"))
    # 100 = points as earned; 150 = half as many again on orders.
    multiplier_percent = models.PositiveSmallIntegerField(_("earn multiplier (%)"), default=100)
    early_access = models.BooleanField(_("early access to drops"), default=False)
    free_shipping = models.BooleanField(_("free shipping code"), default=False)
    perks = models.TextField(_("other perks"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["threshold", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "threshold"], name="uniq_tier_threshold")
        ]

    def __str__(self) -> str:
        return self.name

    def name_in(self, language: str) -> str:
        return str(self.names.get(language) or self.name)


class MemberTier(models.Model):
    """A member's tier, what it was measured on, and until when it is kept at least."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL)
    since = models.DateTimeField(null=True, blank=True)
    keep_until = models.DateTimeField(null=True, blank=True)
    # Spend (minor units) or points over the last 12 months at the last recalculation.
    measured = models.BigIntegerField(default=0)
    measured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "tier"], name="member_tier_ws")]


class Badge(models.Model):
    """A badge: earned automatically by its rule, or granted by staff (rule "manual")."""

    class Rule(models.TextChoices):
        FIRST_ANSWER = "first_answer", _("First accepted answer")
        ACCEPTED_ANSWERS = "accepted_answers", _("Accepted answers")
        VERIFIED_REVIEWER = "verified_reviewer", _("Reviews of products bought")
        EVENT_REGULAR = "event_regular", _("Events attended")
        TOP_CONTRIBUTOR = "top_contributor", _("Top contributor of the month")
        REFERRALS = "referrals", _("Friends referred")
        MANUAL = "manual", _("Granted by the team")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    slug = models.SlugField(max_length=40)
    name = models.CharField(_("name"), max_length=60)
    names = models.JSONField(default=dict, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    rule = models.CharField(_("rule"), max_length=20, choices=Rule.choices)
    # How many (answers, reviews, events, referrals) the rule needs; unused by some rules.
    threshold = models.PositiveIntegerField(_("how many"), default=1)
    # A short symbol shown beside the name on posts (an emoji or a letter).
    symbol = models.CharField(_("symbol"), max_length=8, default="★")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["workspace", "slug"], name="uniq_badge")]

    def __str__(self) -> str:
        return self.name

    def name_in(self, language: str) -> str:
        return str(self.names.get(language) or self.name)


class MemberBadge(models.Model):
    """A badge a member holds; monthly badges once per period ("2026-11")."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    badge = models.ForeignKey(Badge, on_delete=models.CASCADE, related_name="holders")
    period = models.CharField(max_length=7, blank=True)
    awarded_at = models.DateTimeField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "badge", "period"], name="uniq_member_badge")
        ]
        indexes = [models.Index(fields=["workspace", "awarded_at"], name="member_badge_ws")]


class RewardsProfile(models.Model):
    """What a member tells the program about themselves: a birthday (for the birthday
    points; changed at most once a year) and the social accounts they followed."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    birthday_month = models.PositiveSmallIntegerField(null=True, blank=True)
    birthday_day = models.PositiveSmallIntegerField(null=True, blank=True)
    birthday_set_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "birthday_month", "birthday_day"], name="rewards_birthday"
            )
        ]
