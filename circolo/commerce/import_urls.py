"""File import pages of one store; included under w/<slug>/stores/<store_id>/imports/."""

from django.urls import URLPattern, URLResolver, path

import circolo.commerce.import_views as views

app_name = "imports"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.import_list, name="list"),
    path("<int:job_id>/mapping/", views.import_mapping, name="mapping"),
    path("<int:job_id>/report/", views.import_report, name="report"),
    path("<int:job_id>/report.csv", views.import_report_csv, name="report_csv"),
    path("<int:job_id>/start/", views.import_start_view, name="start"),
    path("<int:job_id>/run/", views.import_run_page, name="run"),
    path("<int:job_id>/resume/", views.import_resume, name="resume"),
    path("<int:job_id>/progress/", views.import_progress, name="progress"),
]
