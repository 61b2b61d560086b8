"""The schema endpoint (``GET /api/schema/``). Apart from ``infra/schema.py``, which
drf-spectacular's views import through ``DEFAULT_SCHEMA_CLASS``: this module imports those
views."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response


class SchemaView(SpectacularAPIView):
    """``GET /api/schema/``, one build at a time per process, then from memory.

    drf-spectacular builds the schema on state shared by the process (its settings patch,
    the views' schema objects): two builds at once in one server answered 500 ("Schema
    generation REQUIRES a view instance"). The schema cannot change while the process runs
    and is the same for every caller (``SERVE_PUBLIC``), so each rendering of it (format,
    language, version) is built once, under a lock, and kept."""

    _building = threading.Lock()
    _built: ClassVar[dict[tuple[str, str, str], tuple[Any, dict[str, str]]]] = {}

    @extend_schema(**SCHEMA_KWARGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = (
            request.accepted_renderer.format or "",
            request.GET.get("lang", ""),
            request.GET.get("version", ""),
        )
        with self._building:
            if key not in self._built:
                built = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
                self._built[key] = (built.data, dict(built.headers.items()))
        data, headers = self._built[key]
        return Response(data=data, headers=headers)
