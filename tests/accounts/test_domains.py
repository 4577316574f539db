import pytest
from django.core.exceptions import ValidationError

from accounts.domains import normalize_domain


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Example.COM", "example.com"),
        ("https://API.acme.example/v1/usage?x=1", "api.acme.example"),
        ("acme.example:8443", "acme.example"),
        ("acme.example.", "acme.example"),
        ("  shop.example  ", "shop.example"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_are_stored_in_one_canonical_form(typed, stored):
    assert normalize_domain(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["", "localhost", "exa mple.com", "-bad.example", "bad-.example", "a..b", "10.0.0.1",
     "[::1]", "user@host.example", "x" * 64 + ".example"],
)  # fmt: skip
def test_bad_domains_are_refused_with_a_reason(typed):
    with pytest.raises(ValidationError) as excinfo:
        normalize_domain(typed)
    assert excinfo.value.messages[0]
