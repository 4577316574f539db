import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ParamSpec, TypeVar

import pytest
from django.core.management import call_command
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import License, Membership, User
from api.v1 import api
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory

P = ParamSpec("P")
T = TypeVar("T")


@pytest.fixture
def alice_license(db: None) -> License:
    return LicenseFactory(name="Acme Corp", key="ACME-PRO-0001", timezone="America/New_York")


@pytest.fixture
def bob_license(db: None) -> License:
    return LicenseFactory(name="Globex Inc", key="GLOBEX-STD-0002")


@pytest.fixture
def alice(alice_license: License) -> User:
    return MembershipFactory(
        license=alice_license,
        user=UserFactory(email="alice@acme.example"),
        role=Membership.Role.OWNER,
    ).user


@pytest.fixture
def make_key(capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """A key as operations make one: `manage.py api_key_create` prints it once."""

    def make(license: License, name: str = "integration") -> str:
        capsys.readouterr()
        call_command("api_key_create", license=license.key, name=name)
        return capsys.readouterr().out.strip()

    return make


def bearer(raw: str) -> dict[str, Any]:
    """The header of a request with the key, as keyword arguments of the test client."""
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def document_paths(license: License, transaction_id: int) -> dict[str, str]:
    """Each path of the OpenAPI document (its template), filled in for the license: a
    new operation is covered by the tests that walk them without being named."""
    month = f"{datetime.now(UTC):%Y-%m}"
    return {
        template: template.replace("{license_id}", str(license.public_id))
        .replace("{transaction_id}", str(transaction_id))
        .replace("{month}", month)
        for template in api.get_openapi_schema()["paths"]
    }


class Receiver:
    """An HTTP server on 127.0.0.1 that answers the statuses it is told, in turn."""

    def __init__(self, statuses: Iterable[int]):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """receiver(500, 200, ...) -> Receiver answering those statuses in turn (then 200s)."""
    servers: list[Receiver] = []

    def start(*statuses: int) -> Receiver:
        servers.append(Receiver(statuses))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def committed(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks, celery_eager: None
) -> Callable[..., Any]:
    """committed(action, *args, **kwargs): the action's result, its on-commit work done."""

    def run(action: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run
