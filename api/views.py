"""The API's reference page: the OpenAPI document (the api/v1/ package) laid out for people."""

from typing import Any

from django.conf import settings
from django.views.generic import TemplateView

from api.v1 import api

_METHODS = ("get", "post", "put", "patch", "delete")


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1]


def _type_name(schema: dict[str, Any]) -> str:
    """A parameter's type as people read it: its format (date, uuid) where it has one."""
    return str(schema.get("format") or schema.get("type") or _ref_name(schema))


def _response_schema(response: dict[str, Any]) -> str:
    content: dict[str, Any] = response.get("content") or {}
    for media in content.values():
        return _ref_name(media.get("schema", {}))
    return ""


class ApiReferenceView(TemplateView):
    """Public: what each endpoint takes and answers, from the same document programs read."""

    template_name = "api/reference.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        document = api.get_openapi_schema(path_prefix="/api/v1")
        operations = []
        for path, item in document["paths"].items():
            for method in _METHODS:
                op = item.get(method)
                if op is None:
                    continue
                responses = [
                    {
                        "status": status,
                        "description": r.get("description", ""),
                        "schema": _response_schema(r),
                    }
                    for status, r in op.get("responses", {}).items()
                ]
                operations.append(
                    {
                        "method": method.upper(),
                        "path": path,
                        "summary": op.get("summary", ""),
                        "anchor": op.get("operationId", ""),
                        "parameters": [
                            {
                                "name": p["name"],
                                "where": p["in"],
                                "required": p.get("required", False),
                                "type": _type_name(p.get("schema", {}))
                                or " | ".join(
                                    _type_name(s) for s in p.get("schema", {}).get("anyOf", [])
                                ),
                                "description": p.get("description", "")
                                or p.get("schema", {}).get("description", ""),
                            }
                            for p in op.get("parameters", [])
                        ],
                        "responses": responses,
                    }
                )
        schemas = [
            {
                "name": name,
                "fields": [
                    {
                        "name": field,
                        "type": spec.get("type")
                        or spec.get("format")
                        or _ref_name(spec)
                        or " | ".join(s.get("type", _ref_name(s)) for s in spec.get("anyOf", [])),
                        "format": spec.get("format", ""),
                        "pattern": spec.get("pattern", ""),
                        "required": field in body.get("required", []),
                    }
                    for field, spec in body.get("properties", {}).items()
                ],
            }
            for name, body in document.get("components", {}).get("schemas", {}).items()
        ]
        context.update(
            document=document,
            operations=operations,
            schemas=schemas,
            base_url=settings.PORTAL_API_BASE_URL,
        )
        return context
