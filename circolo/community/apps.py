from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "circolo.community"
    label = "community"
    verbose_name = "Community"
