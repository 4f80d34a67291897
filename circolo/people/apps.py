from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "circolo.people"
    label = "people"
