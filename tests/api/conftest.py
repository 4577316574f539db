import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command

from accounts.models import Membership
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory


@pytest.fixture
def alice_license(db):
    return LicenseFactory(name="Acme Corp", key="ACME-PRO-0001", timezone="America/New_York")


@pytest.fixture
def bob_license(db):
    return LicenseFactory(name="Globex Inc", key="GLOBEX-STD-0002")


@pytest.fixture
def alice(alice_license):
    return MembershipFactory(
        license=alice_license,
        user=UserFactory(email="alice@acme.example"),
        role=Membership.Role.OWNER,
    ).user


@pytest.fixture
def make_key(capsys):
    """A key as operations make one: `manage.py api_key_create` prints it once."""

    def make(license, name="integration"):
        capsys.readouterr()
        call_command("api_key_create", license=license.key, name=name)
        return capsys.readouterr().out.strip()

    return make


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


class Receiver:
    """An HTTP server on 127.0.0.1 that answers the statuses it is told, in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    servers = []

    def start(*statuses):
        servers.append(Receiver(statuses))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def committed(django_capture_on_commit_callbacks, celery_eager):
    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run
