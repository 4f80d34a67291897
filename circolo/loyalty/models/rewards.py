"""The reward catalogue, uploaded code pools and redemptions."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member


class Reward(models.Model):
    """Something members buy with points (or a referred friend gets for free)."""

    class Kind(models.TextChoices):
        AMOUNT_OFF = "amount_off", _("Amount off")
        PERCENT_OFF = "percent_off", _("Percentage off")
        FREE_SHIPPING = "free_shipping", _("Free shipping")
        FREE_PRODUCT = "free_product", _("Free product")
        EARLY_ACCESS = "early_access", _("Early access to a product or drop")
        EVENT_TICKET = "event_ticket", _("Event ticket")

    # Kinds that are a discount code in the store (the others are issued here).
    STORE_KINDS = (Kind.AMOUNT_OFF, Kind.PERCENT_OFF, Kind.FREE_SHIPPING, Kind.FREE_PRODUCT)

    class CodeSource(models.TextChoices):
        STORE = "store", _("Created in the store through its API")
        POOL = "pool", _("Taken from uploaded codes")
        CIRCOLO = "circolo", _("Issued by Circolo")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    names = models.JSONField(default=dict, blank=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # 0: only given away (e.g. the referred friend's reward), never bought with points.
    cost_points = models.PositiveIntegerField(_("cost in points"), default=0)
    amount_minor = models.BigIntegerField(_("amount off"), default=0)
    percent = models.PositiveSmallIntegerField(_("percentage off"), default=0)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    min_order_minor = models.BigIntegerField(_("minimum order"), default=0)
    code_source = models.CharField(
        _("codes"), max_length=8, choices=CodeSource.choices, default=CodeSource.STORE
    )
    # The store whose API makes the codes (code_source "store").
    store = models.ForeignKey(
        "commerce.Store",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("store"),
    )
    # The product of a free-product or early-access reward.
    product = models.ForeignKey(
        "commerce.Product",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("product"),
    )
    # The event of a ticket.
    event = models.ForeignKey(
        "community.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("event"),
    )
    # Members below this tier cannot redeem it (early access for a tier).
    tier = models.ForeignKey(
        "loyalty.Tier",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("tier needed"),
    )
    # Days a code stays valid; 0: no end.
    valid_days = models.PositiveSmallIntegerField(_("code valid for (days)"), default=90)
    # None: no limit.
    stock = models.PositiveIntegerField(_("how many can be redeemed"), null=True, blank=True)
    enabled = models.BooleanField(_("available"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cost_points", "pk"]

    def __str__(self) -> str:
        return self.name

    def name_in(self, language: str) -> str:
        return str(self.names.get(language) or self.name)


class PoolCode(models.Model):
    """A code uploaded for a reward of a store without a connector; used once."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="pool")
    code = models.CharField(max_length=100)
    uploaded_at = models.DateTimeField()
    # Set when a redemption takes it; a taken code is never given again.
    taken_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reward", "code"], name="uniq_pool_code")]
        indexes = [
            models.Index(
                fields=["reward", "id"],
                name="pool_code_free",
                condition=models.Q(taken_at__isnull=True),
            )
        ]


class Redemption(models.Model):
    """A reward given to a member: points spent (or none, for a friend's reward) and the
    code that came of it. If the code cannot be made, the points go back."""

    class Status(models.TextChoices):
        ISSUING = "issuing", _("Being issued")
        ISSUED = "issued", _("Ready to use")
        USED = "used", _("Used")
        FAILED = "failed", _("Could not be issued; points returned")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.RESTRICT, related_name="+")
    reward = models.ForeignKey(Reward, on_delete=models.RESTRICT, related_name="redemptions")
    points = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ISSUING)
    # The member's request key (a form's or an API client's): asking twice gives one.
    request_key = models.CharField(max_length=80)
    code = models.CharField(max_length=100, blank=True)
    # The platform's id of the discount it created, when it made one.
    external_id = models.CharField(max_length=200, blank=True)
    store = models.ForeignKey(
        "commerce.Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    used_order_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "request_key"], name="uniq_redemption_request"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "code"], name="redemption_code"),
            models.Index(fields=["workspace", "status", "created_at"], name="redemption_ws"),
        ]
