"""The audit trail: who changed what, and why. Every change a person makes writes one row
in the same transaction as the change (AuditEvent is append-only in the database)."""

from typing import Any

from django.db import models

from accounts.models import AuditEvent, License, User


def audit_record(
    *,
    actor: User | None,
    action: str,
    license: License | None = None,
    target: str = "",
    changes: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    """Write an audit row. Call it inside the transaction of the change it describes."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        license=license,
        action=action,
        target=target[:200],
        changes=changes or {},
        reason=reason,
    )


def model_changes(instance: models.Model, fields: list[str]) -> dict[str, list[Any]]:
    """{field: [old, new]} for fields whose stored value differs from the instance's."""
    if instance.pk is None:
        return {f: [None, _plain(getattr(instance, f))] for f in fields}
    stored = type(instance)._default_manager.filter(pk=instance.pk).values(*fields).first() or {}
    return {
        f: [_plain(stored.get(f)), _plain(getattr(instance, f))]
        for f in fields
        if stored.get(f) != getattr(instance, f)
    }


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)
