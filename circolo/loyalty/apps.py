from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "circolo.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty"

    def ready(self) -> None:
        # Importing registers the activity handlers and the signal receivers.
        from circolo.loyalty import badge_handlers, handlers, receivers  # noqa: F401
