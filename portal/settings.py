"""Settings for the Token & Credit Portal, all read from the environment.

Every variable is listed in `.env.example`. `DJANGO_ENV=production` switches on the
production checks: a real SECRET_KEY and ALLOWED_HOSTS are required and DEBUG is off.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

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

# Card payments through Stripe (payments/, docs/payments.md). No secret key: no card
# payments, "Purchase Credits" shows how to buy from the billing team.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# A non-default Stripe server (localstripe in development and tests) and its Stripe.js.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
# Frames Stripe.js opens (card fields, 3-D Secure); allowed by the CSP of the pages that
# load Stripe.js, with the origins of STRIPE_JS_URL and STRIPE_API_BASE.
STRIPE_FRAME_ORIGINS = env.list(
    "STRIPE_FRAME_ORIGINS", default=["https://js.stripe.com", "https://hooks.stripe.com"]
)
STRIPE_CURRENCY = "usd"
# Each Stripe request ends within STRIPE_DEADLINE_SECONDS (wall clock, the whole request)
# and reads at most STRIPE_MAX_ANSWER_BYTES; the Stripe calls of one customer page within
# STRIPE_PAGE_BUDGET_SECONDS, well under gunicorn's 60 s. Nothing is retried automatically
# (payments/stripe_client.py): a create sent twice can charge twice.
STRIPE_DEADLINE_SECONDS = env.float("STRIPE_DEADLINE_SECONDS", default=10.0)
STRIPE_MAX_ANSWER_BYTES = env.int("STRIPE_MAX_ANSWER_BYTES", default=2**20)
STRIPE_PAGE_BUDGET_SECONDS = env.float("STRIPE_PAGE_BUDGET_SECONDS", default=20.0)
# Purchase Credits: the preset amounts and the custom amount's range, in whole dollars.
PAYMENT_PRESET_AMOUNTS = env.list("PAYMENT_PRESET_AMOUNTS", default=["10", "25", "50", "100"])
PAYMENT_MIN_AMOUNT = env.str("PAYMENT_MIN_AMOUNT", default="5")
PAYMENT_MAX_AMOUNT = env.str("PAYMENT_MAX_AMOUNT", default="5000")
# Auto top-up guardrails: defaults of an owner's monthly caps.
AUTO_TOPUP_MONTHLY_COUNT = env.int("AUTO_TOPUP_MONTHLY_COUNT", default=5)
AUTO_TOPUP_MONTHLY_AMOUNT = env.str("AUTO_TOPUP_MONTHLY_AMOUNT", default="500")
# The seller on receipts.
SELLER_NAME = env.str("SELLER_NAME", default="Token & Credit Services Ltd.")
SELLER_ADDRESS = env.str("SELLER_ADDRESS", default="1 Example Street, Springfield")
SELLER_TAX_ID = env.str("SELLER_TAX_ID", default="VAT EX-000000000")
# Where the billing team is told of disputes (empty: SUPPORT_EMAIL).
BILLING_TEAM_EMAIL = env.str("BILLING_TEAM_EMAIL", default="")
# Password reset requests allowed per hour from one address and for one email (whether or
# not a login has it), beyond which the page says how long to wait (accounts.password_reset).
PASSWORD_RESET_LIMIT_PER_ADDRESS = env.int("PASSWORD_RESET_LIMIT_PER_ADDRESS", default=10)
PASSWORD_RESET_LIMIT_PER_EMAIL = env.int("PASSWORD_RESET_LIMIT_PER_EMAIL", default=3)
# Four eyes: a goodwill credit or a purchase recorded by hand above this many dollars waits
# for a second, different Billing member's approval (billing.credits.approvals).
CREDIT_APPROVAL_LIMIT = env.str("CREDIT_APPROVAL_LIMIT", default="500")

# "Purchase Credits": the payment page's address; empty shows an in-portal page on how to buy.
PURCHASE_URL = env.str("PURCHASE_URL", default="")
# Where customers write for billing and technical help (help and purchase pages).
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@portal.example")

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

# Upstream metering API (docs/upstream-api.md). Unset (or empty), it is our simulator on
# UPSTREAM_SIMULATOR_PORT, which `make run` then starts; set, `make run` starts none.
UPSTREAM_URL_GIVEN = bool(env.str("UPSTREAM_URL", default=""))
UPSTREAM_URL = env.str("UPSTREAM_URL", default="") or f"http://127.0.0.1:{UPSTREAM_SIMULATOR_PORT}"
UPSTREAM_TOKEN = env.str("UPSTREAM_TOKEN", default="dev-upstream-token")
UPSTREAM_CONNECT_TIMEOUT = env.float("UPSTREAM_CONNECT_TIMEOUT", default=3.0)
UPSTREAM_READ_TIMEOUT = env.float("UPSTREAM_READ_TIMEOUT", default=15.0)
# Each request ends by this wall-clock deadline whatever the upstream does (not a per-read
# timeout), and reads at most this much of an answer (a page of 1,000 records is ~0.5 MB).
UPSTREAM_REQUEST_DEADLINE_SECONDS = env.float("UPSTREAM_REQUEST_DEADLINE_SECONDS", default=30.0)
UPSTREAM_MAX_ANSWER_BYTES = env.int("UPSTREAM_MAX_ANSWER_BYTES", default=32 * 2**20)
UPSTREAM_MAX_ATTEMPTS = env.int("UPSTREAM_MAX_ATTEMPTS", default=4)
UPSTREAM_BACKOFF_SECONDS = env.float("UPSTREAM_BACKOFF_SECONDS", default=0.5)
UPSTREAM_PAGE_SIZE = env.int("UPSTREAM_PAGE_SIZE", default=1000)
# From the web (Test API): the one attempt's deadline. After UPSTREAM_BREAKER_FAILURES
# failures in a row the web answers "not answering" at once for UPSTREAM_BREAKER_OPEN_SECONDS.
UPSTREAM_WEB_TIMEOUT_SECONDS = env.float("UPSTREAM_WEB_TIMEOUT_SECONDS", default=3.0)
UPSTREAM_BREAKER_FAILURES = env.int("UPSTREAM_BREAKER_FAILURES", default=3)
UPSTREAM_BREAKER_OPEN_SECONDS = env.float("UPSTREAM_BREAKER_OPEN_SECONDS", default=30.0)
# Refresh Data runs the sync in the request for at most this long, then hands the rest
# to a worker; a customer may refresh a license once per USAGE_REFRESH_INTERVAL_SECONDS.
USAGE_REFRESH_BUDGET_SECONDS = env.float("USAGE_REFRESH_BUDGET_SECONDS", default=10.0)
USAGE_REFRESH_INTERVAL_SECONDS = env.int("USAGE_REFRESH_INTERVAL_SECONDS", default=30)
# Rate limits per license (portal/ratelimit.py, counted in PostgreSQL): Test API pings and
# history CSV downloads, each LIMIT per WINDOW_SECONDS.
TEST_API_RATE_LIMIT = env.int("TEST_API_RATE_LIMIT", default=10)
TEST_API_RATE_WINDOW_SECONDS = env.int("TEST_API_RATE_WINDOW_SECONDS", default=60)
HISTORY_CSV_RATE_LIMIT = env.int("HISTORY_CSV_RATE_LIMIT", default=10)
HISTORY_CSV_RATE_WINDOW_SECONDS = env.int("HISTORY_CSV_RATE_WINDOW_SECONDS", default=600)
# History exports per license in the same window, whoever asks and through whichever door
# (Download History and the API's history.csv): more keys or members buy no more of them.
HISTORY_CSV_LICENSE_RATE_LIMIT = env.int("HISTORY_CSV_LICENSE_RATE_LIMIT", default=30)
STATEMENT_PDF_RATE_LIMIT = env.int("STATEMENT_PDF_RATE_LIMIT", default=20)
STATEMENT_PDF_RATE_WINDOW_SECONDS = env.int("STATEMENT_PDF_RATE_WINDOW_SECONDS", default=600)
# The dashboard says its data is stale once the last complete sync is older than this.
USAGE_STALE_AFTER_SECONDS = env.int("USAGE_STALE_AFTER_SECONDS", default=15 * 60)
# The beat's sync fan-out (usage.sync_all_licenses, every USAGE_BEAT_SECONDS) asks the
# upstream's feed which licenses have new usage, USAGE_FEED_PAGE_SIZE licenses a page, at
# most USAGE_FEED_MAX_PAGES pages a beat (the rest waits for the next beat), and syncs only
# those; a safety sweep syncs every active license once per USAGE_SWEEP_SECONDS (0: off).
USAGE_BEAT_SECONDS = 5 * 60
USAGE_FEED_PAGE_SIZE = env.int("USAGE_FEED_PAGE_SIZE", default=1000)
USAGE_FEED_MAX_PAGES = env.int("USAGE_FEED_MAX_PAGES", default=100)
USAGE_SWEEP_SECONDS = env.int("USAGE_SWEEP_SECONDS", default=24 * 60 * 60)

# The customer API (/api/v1/, api/): requests per key per window (429 with Retry-After
# beyond), counted in PostgreSQL like the other limits.
API_RATE_LIMIT = env.int("API_RATE_LIMIT", default=120)
API_RATE_WINDOW_SECONDS = env.int("API_RATE_WINDOW_SECONDS", default=60)
# The address customers send their AI calls to (the Test API page's examples); not the
# upstream metering API the portal itself reads.
CUSTOMER_API_BASE_URL = env.str("CUSTOMER_API_BASE_URL", default="https://api.example-ai.com")
# Where the portal's own API answers, as customers reach it.
PORTAL_API_BASE_URL = env.str(
    "PORTAL_API_BASE_URL", default=f"{PORTAL_BASE_URL.rstrip('/')}/api/v1"
)
# Outgoing webhooks (api/webhooks.py): the wall-clock deadline of a whole attempt (lookup,
# connect, TLS, send, answer) and how much of the answer is read (the rest never is); plain
# http to loopback receivers only where allowed (development and tests, never production);
# the retry schedule after each failed attempt (minutes, about 30 hours in all); an endpoint
# failing for this long is disabled and its owners are told by email.
WEBHOOK_DEADLINE_SECONDS = env.float("WEBHOOK_DEADLINE_SECONDS", default=5.0)
WEBHOOK_MAX_ANSWER_BYTES = env.int("WEBHOOK_MAX_ANSWER_BYTES", default=4096)
# The webhooks worker's threads (`make run`): deliveries in flight at once.
WEBHOOK_WORKER_CONCURRENCY = env.int("WEBHOOK_WORKER_CONCURRENCY", default=8)
WEBHOOK_ALLOW_LOOPBACK = False if PRODUCTION else env.bool("WEBHOOK_ALLOW_LOOPBACK", default=True)
WEBHOOK_RETRY_MINUTES = [1, 5, 30, 120, 300, 600, 720]
WEBHOOK_DISABLE_AFTER_SECONDS = env.int("WEBHOOK_DISABLE_AFTER_SECONDS", default=3 * 24 * 3600)
