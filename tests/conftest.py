from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from django.core.cache import caches
from django.test import Client
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from accounts.models import License, User
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory
from tests.processes import Worker, child_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    class RecordingPage(Page):
        """A page of `new_page`: Playwright's, with what it recorded (set on it there)."""

        csp_violations: list[str]
        bad_responses: list[str]


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    """Each test starts with empty caches (the dashboard's rendered sections among them):
    a test's database is rolled back, so ids and frozen clocks repeat from test to test."""
    for cache in caches.all():
        cache.clear()
    yield
    for cache in caches.all():
        cache.clear()


@pytest.fixture
def license_a(db: None) -> License:
    return LicenseFactory(name="Alpha Corp", key="ALPHA-000001")


@pytest.fixture
def license_b(db: None) -> License:
    return LicenseFactory(name="Bravo Secret Inc", key="BRAVO-000002")


@pytest.fixture
def member_a(license_a: License) -> User:
    return MembershipFactory(license=license_a, user=UserFactory(email="ann@alpha.example")).user


@pytest.fixture
def member_b(license_b: License) -> User:
    return MembershipFactory(license=license_b, user=UserFactory(email="ben@bravo.example")).user


@pytest.fixture
def client_a(client: Client, member_a: User) -> Client:
    client.force_login(member_a)
    return client


def _celery_joins_allowed() -> None:
    """Celery keeps "are we inside a task?" in one process-wide flag that each eager
    apply_async sets and puts back. Eager tasks applied at once from several threads (the
    concurrency tests) can put it back in the wrong order and leave it set, and then this
    process's result.get() refuses ("Never call result.get() within a task!"). The test
    process is never inside a task, so it is cleared."""
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run tasks in-process, as a worker would run them, for tests about their effects."""
    from portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
    _celery_joins_allowed()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Worker]]:
    """start_worker(env=None, queue=None) -> Worker: a real Celery worker process on a queue
    of its own (or `queue`), with `env` (default: child_env(), the test database); stopped
    after the test."""
    started: list[Worker] = []
    _celery_joins_allowed()

    def start(env: dict[str, str] | None = None, queue: str | None = None) -> Worker:
        worker = Worker(env if env is not None else child_env(), queue)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


# --- browser tests: Playwright driving Debian's Chromium ---------------------------------
# Marked @pytest.mark.browser; they use pytest-django's live_server. `playwright install`
# cannot download browsers here, so Debian's /usr/bin/chromium is launched directly.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> "Iterator[Browser]":
    import os

    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: make test-tools installs it (make test runs it)")
    # Playwright's sync API keeps an event loop running in this thread; without this
    # Django's ORM refuses to run in the test (SynchronousOnlyOperation).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(
    browser: "Browser", live_server: LiveServer
) -> "Iterator[Callable[..., RecordingPage]]":
    """Open pages in fresh browser contexts: new_page(width=375, **context_options).

    Each page records Content-Security-Policy violations in `page.csp_violations` and
    responses with an error status (a missing static file, say) in `page.bad_responses`.
    """
    contexts = []

    def open_page(width: int = 1280, height: int = 900, **options: Any) -> "RecordingPage":
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}, **options
        )
        contexts.append(context)
        # The two lists are set on Playwright's page right here: this is where it becomes one.
        page = cast("RecordingPage", context.new_page())
        page.csp_violations = []
        page.on(
            "console",
            lambda message: (
                page.csp_violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        page.bad_responses = []
        page.on(
            "response",
            lambda response: (
                page.bad_responses.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        return page

    yield open_page
    for context in contexts:
        context.close()


# --- staff logins: the admin needs a second factor (accounts/admin_site.py) --------------


def staff_force_login(client: Client, user: User) -> User:
    """Log a staff member in as the admin's login would: password and a TOTP code (an
    authenticator enrolled for them), so the session counts as verified by django-otp."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.otp import staff_otp_enrol

    device = TOTPDevice.objects.filter(user=user).first()
    if device is None:
        staff_otp_enrol(acting_user=None, user=user)
        device = TOTPDevice.objects.get(user=user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return user


def totp_code(user_or_secret: User | str) -> str:
    """The code an authenticator app shows now, for a login's device or a base32 secret."""
    import base64

    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if isinstance(user_or_secret, str):
        key = base64.b32decode(user_or_secret)
    else:
        key = TOTPDevice.objects.get(user=user_or_secret).bin_key
    return f"{TOTP(key).token():06d}"


@pytest.fixture
def admin_client(client: Client, admin_user: User) -> Client:
    """pytest-django's superuser client, logged in with the second factor the admin asks."""
    staff_force_login(client, admin_user)
    return client
