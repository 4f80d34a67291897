from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "circolo.community"
    label = "community"
    verbose_name = "Community"

    def ready(self) -> None:
        # Search registers its people.privacy eraser (erased members' posts leave the index).
        from circolo.community import search  # noqa: F401
