"""Circolo settings: one flat module, every value read from the environment.

Defaults give the embedded runtime (SQLite in WAL mode, tasks in process) so that
`circolo demo` works on a fresh machine. Production sets DATABASE_URL, REDIS_URL,
SECRET_KEY, ALLOWED_HOSTS and DEBUG=false.
"""

from __future__ import annotations

import os
from operator import attrgetter
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("CIRCOLO_DATA_DIR", str(BASE_DIR / "data")))

DEBUG = env_bool("DEBUG", False)
# A secret key is generated per data folder when none is given, so the embedded default
# is safe without configuration; production must set SECRET_KEY (check --deploy says so).
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    _key_file = DATA_DIR / "secret_key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text().strip()
    else:
        import secrets

        SECRET_KEY = secrets.token_urlsafe(50)
        try:
            DATA_DIR.mkdir(parents=True, exist_ok=True)
            _key_file.write_text(SECRET_KEY)
            _key_file.chmod(0o600)
        except OSError:
            pass  # read-only checkout: a per-process key still works, sessions do not survive
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.facebook",
    "allauth.socialaccount.providers.apple",
    "allauth.mfa",
    "circolo.core",
    "circolo.people",
    "circolo.activity",
    "circolo.commerce",
    "circolo.community",
    "circolo.loyalty",
    "circolo.insights",
    "circolo.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "circolo.core.middleware.MfaRequiredMiddleware",
]

ROOT_URLCONF = "circolo.urls"
WSGI_APPLICATION = "circolo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "circolo" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "circolo.core.context_processors.workspace",
            ],
        },
    }
]

# Database: SQLite file in the data folder unless DATABASE_URL says otherwise.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'circolo.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers work while a writer commits; IMMEDIATE avoids upgrade deadlocks.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;"
            " PRAGMA temp_store=MEMORY; PRAGMA cache_size=-64000;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# Lets parallel runs on one PostgreSQL server use their own test databases.
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Background work: Celery on Redis when REDIS_URL is set, otherwise in process after commit.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
# Without Celery, work nobody should wait for (webhook processing) runs on a background
# thread of the web process; false runs it in the caller's thread after commit (tests).
CIRCOLO_BACKGROUND_THREAD = env_bool("CIRCOLO_BACKGROUND_THREAD", True)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "circolo.activity.tasks.*": {"queue": env_str("CELERY_ACTIVITY_QUEUE", "default")}
}
# Commerce: keys that seal store credentials (first seals, all open; default SECRET_KEY),
# how often stores are reconciled against their API, and how long a delivery is retried.
CIRCOLO_SECRET_KEYS = env_list("CIRCOLO_SECRET_KEYS")
CIRCOLO_RECONCILE_SECONDS = env_int("CIRCOLO_RECONCILE_SECONDS", 3600)
# Largest file a store import accepts, in bytes.
CIRCOLO_IMPORT_MAX_BYTES = env_int("CIRCOLO_IMPORT_MAX_BYTES", 500_000_000)
# Largest image a member may upload to a post, in bytes (it is then resized and re-encoded).
CIRCOLO_UPLOAD_MAX_BYTES = env_int("CIRCOLO_UPLOAD_MAX_BYTES", 8 * 1024 * 1024)
# How long visitors who are not signed in share a thread page's rendered posts (0: off).
CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS = env_int("CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS", 30)
CIRCOLO_WEBHOOK_MAX_ATTEMPTS = env_int("CIRCOLO_WEBHOOK_MAX_ATTEMPTS", 8)
# Webhooks that sign a timestamp are refused when it is further than this from now.
CIRCOLO_WEBHOOK_TOLERANCE_SECONDS = env_int("CIRCOLO_WEBHOOK_TOLERANCE_SECONDS", 300)

CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "sweep-unhandled-activities": {
        "task": "circolo.activity.tasks.process_pending",
        "schedule": 300.0,
    },
    "purge-idempotency-records": {
        "task": "circolo.core.tasks.idempotency_purge_task",
        "schedule": 3600.0,
    },
    "retry-webhook-deliveries": {
        "task": "circolo.commerce.tasks.deliveries_retry",
        "schedule": 60.0,
    },
    "reconcile-stores": {
        "task": "circolo.commerce.tasks.stores_reconcile",
        "schedule": float(CIRCOLO_RECONCILE_SECONDS),
    },
    "community-event-reminders": {
        "task": "circolo.community.tasks.event_reminders_task",
        "schedule": 300.0,
    },
    "community-trust-review": {
        "task": "circolo.community.tasks.trust_review_task",
        "schedule": 86400.0,
    },
    "community-notification-mail": {
        "task": "circolo.community.tasks.notifications_mail_task",
        "schedule": 60.0,
    },
    "community-digests": {
        "task": "circolo.community.tasks.digests_task",
        "schedule": 3600.0,
    },
    "community-scheduled-threads": {
        "task": "circolo.community.tasks.scheduled_threads_task",
        "schedule": 60.0,
    },
    "community-drafts-purge": {
        "task": "circolo.community.tasks.drafts_purge_task",
        "schedule": 86400.0,
    },
    "loyalty-tiers": {
        "task": "circolo.loyalty.tasks.tiers_recalculate_task",
        "schedule": 86400.0,
    },
    "loyalty-top-contributors": {
        "task": "circolo.loyalty.tasks.top_contributors_task",
        "schedule": 86400.0,
    },
    "loyalty-approve-order-points": {
        "task": "circolo.loyalty.tasks.order_points_approve_task",
        "schedule": 3600.0,
    },
    "loyalty-points-expiry": {
        "task": "circolo.loyalty.tasks.points_expiry_task",
        "schedule": 86400.0,
    },
    "loyalty-birthdays": {
        "task": "circolo.loyalty.tasks.birthdays_task",
        "schedule": 3600.0,
    },
    "loyalty-redemptions-retry": {
        "task": "circolo.loyalty.tasks.redemptions_retry_task",
        "schedule": 300.0,
    },
    "loyalty-referrals-pay": {
        "task": "circolo.loyalty.tasks.referrals_pay_task",
        "schedule": 3600.0,
    },
}

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# Accounts (django-allauth)
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
# Django's User keeps a unique username: allauth fills it from the email address.
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
# People know themselves by their email address, not by the generated username.
ACCOUNT_USER_DISPLAY = attrgetter("email")
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Circolo] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if env_bool("SECURE_SSL", False) else "http"
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Circolo")
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
# Social providers are enabled by configuration: a provider appears once its id is set.
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
for _provider in ("google", "facebook", "apple"):
    _client_id = env_str(f"{_provider.upper()}_CLIENT_ID")
    if _client_id:
        _app: dict[str, object] = {
            "client_id": _client_id,
            "secret": env_str(f"{_provider.upper()}_SECRET"),
            "key": env_str(f"{_provider.upper()}_KEY"),
        }
        if _provider == "apple":
            _app["settings"] = {"certificate_key": env_str("APPLE_CERTIFICATE_KEY")}
        SOCIALACCOUNT_PROVIDERS[_provider] = {"APPS": [_app]}

# Email: console in the embedded default; SMTP when EMAIL_HOST is set; file when EMAIL_FILE_PATH.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Circolo <noreply@localhost>")
# The sender of community notification mail and digests; empty: DEFAULT_FROM_EMAIL.
CIRCOLO_COMMUNITY_MAIL_FROM = env_str("CIRCOLO_COMMUNITY_MAIL_FROM")

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("it", _("Italian")),
    ("es", _("Spanish")),
    ("zh-hans", _("Simplified Chinese")),
]
LOCALE_PATHS = [BASE_DIR / "circolo" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        and env_bool("STATIC_MANIFEST", True)
        and (STATIC_ROOT / "staticfiles.json").exists()
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"

# Security: strict by default in production (DEBUG off); relaxed only for plain-HTTP local runs.
SECURE_SSL = env_bool("SECURE_SSL", False)
SECURE_SSL_REDIRECT = SECURE_SSL
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE_SSL else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL
SECURE_HSTS_PRELOAD = SECURE_SSL
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Circolo's own limits.
CIRCOLO_API_BATCH_LIMIT = env_int("CIRCOLO_API_BATCH_LIMIT", 10_000)
# A full API batch (10,000 items with properties) is far above Django's 2.5 MB default.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 32 * 1024 * 1024)
CIRCOLO_PROPERTIES_MAX_BYTES = env_int("CIRCOLO_PROPERTIES_MAX_BYTES", 16 * 1024)
CIRCOLO_FUTURE_TOLERANCE_HOURS = 24
CIRCOLO_MFA_REQUIRED_ROLES = env_list("CIRCOLO_MFA_REQUIRED_ROLES", "owner,manager")
# Off only for local development: owners and managers then work without an authenticator app.
CIRCOLO_MFA_ENFORCE = env_bool("CIRCOLO_MFA_ENFORCE", True)
