import factory
from django.utils import timezone

from accounts.models import Domain, License, Membership, User
from tests.factories import ModelFactory

PASSWORD = "correct-horse-battery-9"


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@customer.example")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()


class LicenseFactory(ModelFactory[License]):
    class Meta:
        model = License

    name = factory.Sequence(lambda n: f"Customer {n}")
    key = factory.Sequence(lambda n: f"KEY-{n:06d}")
    license_type = License.Type.STANDARD
    contact_email = factory.Sequence(lambda n: f"billing{n}@customer.example")
    member_since = factory.LazyFunction(timezone.localdate)
    timezone = "UTC"


class DomainFactory(ModelFactory[Domain]):
    class Meta:
        model = Domain

    license = factory.SubFactory(LicenseFactory)
    hostname = factory.Sequence(lambda n: f"d{n}.customer.example")


class MembershipFactory(ModelFactory[Membership]):
    class Meta:
        model = Membership

    license = factory.SubFactory(LicenseFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER
