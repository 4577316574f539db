"""Service tokens as operations make them (`manage.py service_token_create`, printed once)."""

from collections.abc import Callable

import pytest
from django.core.management import call_command


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
