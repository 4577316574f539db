"""The portal's own services and their limits: card payments, purchases and auto top-up,
receipts, the billing team, the upstream metering API, rate limits, the customer API and
webhooks."""

from portal.settings.platform import PORTAL_BASE_URL, PRODUCTION, UPSTREAM_SIMULATOR_PORT, env

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
# Invoices and credit notes (billing/documents): the tax rate in percent per customer
# country, e.g. INVOICE_TAX_RATES=DE=19,FR=20 (none: 0). Prices include it: a $25.00
# purchase is $25.00 paid, of which the tax. The series' prefixes start each number.
INVOICE_TAX_RATES = env.dict("INVOICE_TAX_RATES", default={})
INVOICE_SERIES = env.str("INVOICE_SERIES", default="INV")
CREDIT_NOTE_SERIES = env.str("CREDIT_NOTE_SERIES", default="CN")
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
# The gate (billing.limits.gate, POST /gate/v1/authorize): an allowed estimate is held for
# GATE_HOLD_SECONDS unless the usage record with its request id posts first; an answer is
# remembered for the same request id GATE_ANSWER_KEEP_SECONDS past that. The gate fails
# closed ("unavailable") when PostgreSQL makes it wait longer than GATE_LOCK_TIMEOUT_MS for
# the license's row or GATE_STATEMENT_TIMEOUT_MS for a statement.
GATE_HOLD_SECONDS = env.int("GATE_HOLD_SECONDS", default=5 * 60)
GATE_ANSWER_KEEP_SECONDS = env.int("GATE_ANSWER_KEEP_SECONDS", default=24 * 60 * 60)
GATE_LOCK_TIMEOUT_MS = env.int("GATE_LOCK_TIMEOUT_MS", default=500)
GATE_STATEMENT_TIMEOUT_MS = env.int("GATE_STATEMENT_TIMEOUT_MS", default=1000)
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
