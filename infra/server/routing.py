"""One URL, one view per HTTP method: ``GET /api/tickets`` is a query (``read_api``),
``POST /api/tickets`` a command (``command_api``), and neither side imports the other.

``route(GET=ReadView, POST=CommandView)`` is the URL's view: it hands each request to the
view of its method, unchanged. Every answer's ``Allow`` lists the methods of the whole URL
(DRF's views list only their own), and a method no view serves is a 405 from DRF with that
``Allow``. A URL may also send one method to another view when a query parameter is present:
``GET /api/tickets/{id}?as_of=...`` is the ticket rebuilt from its events (the write side's
audit view), without it the read model. ``MethodRouteSchemaGenerator`` shows drf-spectacular
each method's own view, so the OpenAPI schema is what it would be for one view class per URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from rest_framework.views import APIView

ViewFunction = Callable[..., HttpResponseBase]


class MethodRoute:
    """The view of one URL whose methods are served by different ``APIView`` classes."""

    csrf_exempt = True  # as DRF's own views: authentication is the API's tokens

    def __init__(
        self,
        views: Mapping[str, type[APIView]],
        with_param: Mapping[tuple[str, str], type[APIView]] | None = None,
    ) -> None:
        if not views:
            raise ValueError("a route needs at least one method")
        self.views = {method.upper(): view for method, view in views.items()}
        self.callbacks: dict[str, ViewFunction] = {
            method: view.as_view() for method, view in self.views.items()
        }
        self.param_callbacks: dict[tuple[str, str], ViewFunction] = {
            (method.upper(), param): view.as_view()
            for (method, param), view in (with_param or {}).items()
        }
        methods = set(self.views)
        if "GET" in methods:
            methods.add("HEAD")  # Django's View.setup lets get answer HEAD
        methods.add("OPTIONS")
        order = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
        self.allow = ", ".join(m for m in order if m in methods)
        # What DRF's schema generators and ``is_api_view`` look for on a URL's callback.
        first = next(iter(self.views.values()))
        self.cls = first
        self.initkwargs: dict[str, Any] = {}

    def view_for(self, method: str) -> type[APIView] | None:
        method = method.upper()
        if method == "HEAD" and "HEAD" not in self.views:
            method = "GET"
        return self.views.get(method)

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        method = (request.method or "GET").upper()
        if method == "HEAD" and "HEAD" not in self.callbacks:
            method = "GET"
        # A method no view has (OPTIONS, or one not allowed) goes to the first view: DRF
        # answers OPTIONS, and 405 for the rest, as one view class would.
        callback = self.callbacks.get(method) or next(iter(self.callbacks.values()))
        for (param_method, param), param_callback in self.param_callbacks.items():
            if param_method == method and param in request.GET:
                callback = param_callback
                break
        response = callback(request, *args, **kwargs)
        if response.has_header("Allow"):
            response["Allow"] = self.allow
        return response


def route(
    with_param: Mapping[tuple[str, str], type[APIView]] | None = None, **views: type[APIView]
) -> MethodRoute:
    """``route(GET=TicketListView, POST=OpenTicketView)``; ``with_param={("GET", "as_of"):
    TicketAsOfView}`` sends a GET that has ``as_of`` to that view."""
    return MethodRoute(views, with_param)


class MethodRouteEnumerator(EndpointEnumerator):
    def get_allowed_methods(self, callback: Any) -> list[str]:
        if isinstance(callback, MethodRoute):
            return [m for m in callback.views if m not in ("OPTIONS", "HEAD")]
        return list(super().get_allowed_methods(callback))  # type: ignore[no-untyped-call]


class MethodRouteSchemaGenerator(SchemaGenerator):
    """drf-spectacular's generator, documenting each method of a ``MethodRoute`` from the view
    that serves it (``DEFAULT_GENERATOR_CLASS``)."""

    endpoint_inspector_cls = MethodRouteEnumerator

    def create_view(self, callback: Any, method: str, request: Any = None) -> Any:
        if isinstance(callback, MethodRoute):
            view = callback.view_for(method)
            assert view is not None
            callback = view.as_view()
        return super().create_view(callback, method, request)  # type: ignore[no-untyped-call]
