"""The platform's settings: Django, the database and its replica, caches, email, sessions,
security, logins, the content security policy, Celery and logging."""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be development, production or test, not {DJANGO_ENV!r}"
    )
PRODUCTION = DJANGO_ENV == "production"

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = False if PRODUCTION else env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

if PRODUCTION:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be set to a long random value in production")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must list the portal's hostnames in production")

INSTALLED_APPS = [
    # The admin with the console's site (console.sites): a second factor for every staff
    # login (accounts.admin_site), the portal's name, the operations overview as its
    # index, a plain 404 for customers.
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "portal",
    "accounts",
    "billing",
    "usage",
    "console.apps.ConsoleConfig",
    "api",
    "payments",
    "provider",
    "dashboard",
    "demo",
]


def _license_home(license) -> str:
    from django.urls import reverse

    return reverse("dashboard:overview", kwargs={"license_id": license.public_id})


# The project is where the apps meet: a license's home page is the dashboard (the top app),
# and accounts, billing and usage link to it only through License.get_absolute_url().
ABSOLUTE_URL_OVERRIDES = {"accounts.license": _license_home}

MIDDLEWARE = [
    "portal.metrics.RequestMetricsMiddleware",
    "portal.middleware.RequestTimezoneMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.middleware.SessionActivityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # After the session and the login: notes a person's own writes (read-your-writes).
    "portal.db_router.ReadYourWritesMiddleware",
    "portal.middleware.PrivatePagesNoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    # The dashboard's sections (dashboard/render_cache.py), drawn on every request once
    # ledgers change every second: Jinja2 compiles a template to Python, and drew them
    # several times faster than Django's engine (docs/architecture.md, "The drawn
    # dashboard"). Its templates are in templates/jinja2/ and are asked of it by name
    # (engines["jinja2"]); autoescaped like Django's, and a name a template does not have
    # is an error.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "dashboard.jinja_env.environment"},
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/portal"),
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
    "DB_CONNECT_TIMEOUT", default=5
)
# An optional streaming read replica of DATABASE_URL for customer reads (portal.db_router:
# which pages, read-your-writes; portal.replica: when it counts as up). Its connect timeout
# is short, and a replica that does not answer is left alone for REPLICA_RETRY_SECONDS, so
# a replica outage costs a request at most one short wait, and pages come from the primary.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"].update(
        ENGINE="django.db.backends.postgresql",
        CONN_MAX_AGE=DATABASES["default"]["CONN_MAX_AGE"],
        CONN_HEALTH_CHECKS=True,
        # The test runner makes no database for it: in tests it is the test database.
        TEST={"MIRROR": "default"},
    )
    DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "REPLICA_CONNECT_TIMEOUT",
        default=2,  # libpq's least
    )
DATABASE_ROUTERS = ["portal.db_router.PrimaryReplicaRouter"]
# Reads go to the primary while the replica is further behind than either limit.
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=10.0)
REPLICA_MAX_LAG_BYTES = env.int("REPLICA_MAX_LAG_BYTES", default=16 * 1024 * 1024)
# After a person's own write, their session reads from the primary until the replica has
# replayed it, for at most this long (longer than REPLICA_MAX_LAG_SECONDS: a replica that
# has not replayed the write by then counts as lagging anyway).
REPLICA_READ_YOUR_WRITES_SECONDS = env.float("REPLICA_READ_YOUR_WRITES_SECONDS", default=30.0)
# How often each process reads the replica's position; how long it leaves a replica that
# did not answer before trying it again.
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=1.0)
REPLICA_RETRY_SECONDS = env.float("REPLICA_RETRY_SECONDS", default=5.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins that are locked out
    # Django's ModelBackend, by the path the sessions name (accounts/sessions.py).
    "accounts.sessions.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# Email: console locally, SMTP (or anything) from EMAIL_URL in production.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# Seconds an SMTP connection may block (EMAIL_URL's ?timeout= wins); Django's default waits forever.
EMAIL_TIMEOUT = EMAIL_CONFIG.get("EMAIL_TIMEOUT") or env.int("EMAIL_TIMEOUT", default=10)
# And the whole sending, whatever the mail server does (portal/mail.py): SMTP goes through
# the deadline backend.
EMAIL_DEADLINE_SECONDS = env.float("EMAIL_DEADLINE_SECONDS", default=30.0)
if EMAIL_CONFIG.get("EMAIL_BACKEND") == "django.core.mail.backends.smtp.EmailBackend":
    EMAIL_BACKEND = "portal.mail.DeadlineEmailBackend"
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="Token & Credit Portal <noreply@portal.example>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# `make run`'s web port, and what follows from it unless set (empty counts as unset). This
# is the one place they are derived, so a second copy on one machine needs only another
# PORT: links in emails point at PORT, the upstream simulator listens on PORT + 100,
# `make run`'s localstripe on PORT + 420 (8420 by default), and UPSTREAM_URL (below)
# defaults to the simulator.
PORT = env.int("PORT", default=8000)
UPSTREAM_SIMULATOR_PORT = int(env.str("UPSTREAM_SIMULATOR_PORT", default="") or PORT + 100)
LOCALSTRIPE_PORT = int(env.str("LOCALSTRIPE_PORT", default="") or PORT + 420)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="") or f"http://127.0.0.1:{PORT}"

# The portal keeps nothing essential in a cache, so a Redis outage never breaks pages.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # The dashboard's rendered sections (dashboard/render_cache.py): one entry per license,
    # about 100 KB (its hundred recent entries and the charts), replaced by each new
    # version and dropped after an hour unread; at most 300 licenses, ~30 MB per process.
    # In each process's memory: nothing to share, nothing to go down. DASHBOARD_RENDER_CACHE=
    # false draws every dashboard in full (the bench compares both; so can an operator).
    "dashboard": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache"
        if env.bool("DASHBOARD_RENDER_CACHE", default=True)
        else "django.core.cache.backends.dummy.DummyCache",
        "LOCATION": "dashboard-sections",
        "TIMEOUT": 60 * 60,
        "OPTIONS": {"MAX_ENTRIES": 300},
    },
}

# Django's database sessions, in accounts.Session (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=60 * 60 * 2)
# A person's requests renew the idle timeout at most this often (portal.middleware).
SESSION_RENEW_SECONDS = 60
# An idle timeout: portal.middleware.SessionActivityMiddleware re-saves the session on a
# request a person makes (not on the dashboard's background refresh), at most once a minute.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

ADMIN_URL = env.str("ADMIN_URL", default="admin/")

# /metrics answers requests bearing this token (and staff sessions); empty = staff only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# The real client address comes from a proxy header only when one is configured.
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="")
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)

# Brute-force protection (django-axes) on the customer and the admin login: lock an
# account from an address after LOGIN_FAILURE_LIMIT failures, for LOGIN_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.login_locked_out"  # says for how long
AXES_CLIENT_IP_CALLABLE = "portal.http.client_ip"
AXES_USERNAME_CALLABLE = "accounts.forms.login_username"
AXES_VERBOSE = False
# Beyond the (account, address) pairs above: failures per account whatever the address, and
# per address whatever the account, with progressive delays (accounts/login_throttle.py).
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=10)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
# Staff TOTP (django-otp): the issuer shown in authenticator apps.
OTP_TOTP_ISSUER = "Token & Credit Portal"

# A strict Content-Security-Policy: everything a page needs is served by the portal, no
# inline script or style (charts are server-rendered SVG with presentation attributes, the
# auto-refresh is static/js/dashboard.js). The Django admin runs under it too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# Celery: JSON only, late acks with idempotent tasks, bounded time.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_RESULT_EXPIRES = timedelta(hours=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every network call has a timeout (docs/security.md): a broker that accepts connections
# but never answers costs a web request at most about BROKER_TIMEOUT_SECONDS per attempt
# (portal.tasks.task_enqueue tries twice), never forever.
BROKER_TIMEOUT_SECONDS = env.float("BROKER_TIMEOUT_SECONDS", default=2.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 60 * 60,
    "socket_timeout": BROKER_TIMEOUT_SECONDS,
    "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
    "max_retries": 1,
}
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT_SECONDS
CELERY_REDIS_SOCKET_TIMEOUT = BROKER_TIMEOUT_SECONDS
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = BROKER_TIMEOUT_SECONDS
# Webhook deliveries have a queue and a worker of their own (api/tasks.py).
CELERY_TASK_ROUTES = {"api.deliver_webhook": {"queue": "webhooks"}}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "celery": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # One INFO line per upstream request is noise; the sync logs one line per run.
        "httpx": {"level": "WARNING"},
        # The stripe library logs every request at INFO; payments logs what matters.
        "stripe": {"level": "WARNING"},
    },
}
