"""Service tokens as operations make them (`manage.py service_token_create`, printed once)."""

from collections.abc import Callable

import pytest
from django.core.management import call_command

# The upstream simulator (its fixture lives with the usage tests): a push carries the records
# the upstream would serve, so the pull of the same records meets them.
from tests.usage.conftest import _quick_upstream_client, start_simulator

__all__ = ["_quick_upstream_client", "start_simulator"]


@pytest.fixture
def make_token(db: None, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    def make(name: str = "gateway") -> str:
        capsys.readouterr()
        call_command("service_token_create", name=name)
        return capsys.readouterr().out.strip()

    return make


@pytest.fixture
def service_token(make_token: Callable[..., str]) -> str:
    return make_token()


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
