"""The typed base of every factory_boy factory in the tests: calling a factory gives its model.

factory_boy's `Factory[T]` is generic and `LicenseFactory.create()` is typed `-> License`, but
`LicenseFactory(...)` goes through `FactoryMetaClass.__call__`, which mypy does not read: it
types the call from the class's `__new__` and so calls the result a `LicenseFactory`. Declaring
`__new__` (for mypy only; factory_boy never instantiates a factory) makes `LicenseFactory(...)`
a `License`, so a test that passes it where a `User` is expected fails `make lint`.
"""

from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model
from factory.django import DjangoModelFactory

M = TypeVar("M", bound=Model)


class ModelFactory(DjangoModelFactory[M]):
    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # mypy requires __new__ to return the class's own instances; factory_boy's metaclass
        # returns the model instead, which only this declaration can say.
        def __new__(cls, **kwargs: Any) -> M: ...  # type: ignore[misc]
