from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "circolo.insights"
    label = "insights"
