"""``GET /api/analytics/...``: the admin dashboard's KPI cards and each chart's series.

Admins only (403 for agents and customers). Every endpoint takes the same filters, checked
strictly (400 naming the parameter): ``from`` and ``to`` (calendar days, inclusive, in
``tz``; default the 30 days to today), ``tz`` (an IANA zone, default UTC), ``priority``
(comma-separated), ``agent`` (a user id, or ``none`` for unassigned), ``team`` (a team's
id, or ``none`` for tickets in no team), ``tag``, and ``after``
(read-your-writes: wait, bounded, until analytics reflect that log position). The metrics
are defined in docs/analytics.md and, as SQL, in ``infra.clickhouse.metrics``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domain.lifecycle import Priority
from infra.clickhouse.connect import reader
from infra.clickhouse.metrics import Filters, Metrics
from infra.clickhouse.ports import AnalyticsUnavailableError
from read_api.consistency import parse_after, wait_for

NAME = "analytics"
MAX_DAYS = 366
DEFAULT_DAYS = 30
NO_AGENT = NO_TEAM = "none"
FILTER_PARAMS = frozenset({"from", "to", "tz", "priority", "agent", "team", "tag", "after"})

PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive), in tz."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive), in tz."),
    OpenApiParameter("tz", str, description="IANA time zone of the days (default UTC)."),
    OpenApiParameter(
        "priority", str, description="Comma-separated priorities (any of): low,medium,high,urgent"
    ),
    OpenApiParameter("agent", str, description="An agent's user id, or 'none' (unassigned)."),
    OpenApiParameter("team", str, description="A team's id, or 'none' (tickets in no team)."),
    OpenApiParameter("tag", str, description="Tickets with this tag."),
    OpenApiParameter(
        "after",
        OpenApiTypes.INT,
        description="A position returned by a command: wait (bounded) until this read reflects it.",
    ),
]
CLOCK = OpenApiParameter(
    "clock",
    str,
    enum=list(Metrics.CLOCKS),
    description="wall (default): elapsed time; business: inside the SLA calendar's hours.",
)
BY = OpenApiParameter(
    "by", str, enum=sorted(Metrics.VOLUME_BY), description="What to count tickets by."
)


class AnalyticsUnavailable(APIException):
    status_code = 503
    default_code = "analytics_unavailable"
    default_detail = "Analytics are not available in this process."


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def _day(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(field, "A day as YYYY-MM-DD.") from None


def parse_filters(params: Any, extra: frozenset[str] = frozenset()) -> Filters:
    unknown = sorted(set(params) - FILTER_PARAMS - extra)
    if unknown:
        raise _bad(unknown[0], "Unknown parameter.")
    tz = params.get("tz") or "UTC"
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad("tz", f"Unknown time zone {tz!r}.") from None
    to = _day(params["to"], "to") if params.get("to") else datetime.now(zone).date()
    start = (
        _day(params["from"], "from")
        if params.get("from")
        else to - timedelta(days=DEFAULT_DAYS - 1)
    )
    if start > to:
        raise _bad("from", "from is after to.")
    if (to - start).days + 1 > MAX_DAYS:
        raise _bad("from", f"At most {MAX_DAYS} days.")
    priorities: tuple[str, ...] = ()
    if params.get("priority"):
        priorities = tuple(p.strip() for p in params["priority"].split(","))
        known = {p.value for p in Priority}
        wrong = [p for p in priorities if p not in known]
        if wrong:
            raise _bad("priority", f"Unknown priority {wrong[0]!r}; one of {sorted(known)}.")
    agent = params.get("agent")
    if agent is not None and (not agent or len(agent) > 64):
        raise _bad("agent", "An agent's user id, or 'none'.")
    tag = params.get("tag")
    if tag is not None and (not tag.strip() or len(tag) > 40):
        raise _bad("tag", "A tag of 1 to 40 characters.")
    team = params.get("team")
    if team is not None and team != NO_TEAM:
        try:
            team = str(UUID(team))
        except ValueError:
            raise _bad("team", "A team's id, or 'none'.") from None
    return Filters(
        date_from=start,
        date_to=to,
        tz=zone.key,
        priority=priorities,
        agent="" if agent == NO_AGENT else agent,
        tag=tag.strip().lower() if tag is not None else None,
        team="" if team == NO_TEAM else team,
    )


def metrics() -> Metrics:
    return reader(settings.CLICKHOUSE_URL, settings.ANALYTICS_PATH)


class AnalyticsView(APIView):
    """One metric of the dashboard (a subclass names it)."""

    extra: ClassVar[frozenset[str]] = frozenset()
    error_statuses: ClassVar[list[int]] = [400, 401, 403, 503]

    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        if getattr(request.user, "role", None) != "admin":
            raise PermissionDenied("Only admins see analytics.")
        filters = parse_filters(request.query_params, self.extra)
        after = parse_after(request)
        try:
            m = metrics()
            position, stale = wait_for(NAME, after, read_position=lambda _: m.position())
            data = self.compute(m, filters, request)
        except AnalyticsUnavailableError as error:
            raise AnalyticsUnavailable(str(error)) from None
        body = {
            "filters": {
                "from": filters.date_from.isoformat(),
                "to": filters.date_to.isoformat(),
                "tz": filters.tz,
                "priority": list(filters.priority),
                "agent": filters.agent,
                "tag": filters.tag,
                "team": filters.team,
            },
            "data": data,
        }
        response = Response(body)
        response["X-Deskstream-Position"] = str(position)
        if stale:
            response["X-Deskstream-Stale"] = "true"
        return response


# ------------------------------------------------------------------ the answers' schema
# One envelope per endpoint ({"filters", "data"}), so the web app's types are generated.
S = serializers


class AnalyticsFiltersSerializer(S.Serializer[Any]):
    """The filters the answer was computed with (defaults filled in)."""

    from_ = S.DateField()
    to = S.DateField()
    tz = S.CharField()
    priority = S.ListField(child=S.CharField())
    agent = S.CharField(allow_null=True, allow_blank=True)
    tag = S.CharField(allow_null=True)
    team = S.CharField(allow_null=True, allow_blank=True)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # a keyword in Python, a name in the API
        return fields


class AnalyticsSummarySerializer(S.Serializer[Any]):
    open = S.IntegerField()
    created = S.IntegerField()
    resolved = S.IntegerField()
    resolution_median_seconds = S.FloatField(allow_null=True)
    resolution_average_seconds = S.FloatField(allow_null=True)
    first_response_median_seconds = S.FloatField(allow_null=True)
    sla_breaches = S.IntegerField()
    sla_compliance_pct = S.FloatField(allow_null=True)
    reopen_rate_pct = S.FloatField(allow_null=True)


class AnalyticsOpenSerializer(S.Serializer[Any]):
    open = S.IntegerField()
    by_status = S.DictField(child=S.IntegerField())


class AnalyticsDaySerializer(S.Serializer[Any]):
    day = S.DateField()
    created = S.IntegerField()
    resolved = S.IntegerField()


class AnalyticsStatusDaySerializer(S.Serializer[Any]):
    day = S.DateField()
    by_status = S.DictField(child=S.IntegerField())


class AnalyticsBucketSerializer(S.Serializer[Any]):
    bucket = S.CharField()
    tickets = S.IntegerField()


class AnalyticsDurationSerializer(S.Serializer[Any]):
    count = S.IntegerField()
    median = S.FloatField(allow_null=True)
    p90 = S.FloatField(allow_null=True)
    average = S.FloatField(allow_null=True)
    clock = S.ChoiceField(choices=list(Metrics.CLOCKS))
    distribution = AnalyticsBucketSerializer(many=True)


class AnalyticsSlaSerializer(S.Serializer[Any]):
    breaches = S.IntegerField()
    first_response_breaches = S.IntegerField()
    resolution_breaches = S.IntegerField()
    tickets = S.IntegerField()
    compliant = S.IntegerField()
    compliance_pct = S.FloatField(allow_null=True)


class AnalyticsBacklogSerializer(S.Serializer[Any]):
    agent_id = S.CharField(allow_blank=True)
    open = S.IntegerField()


class AnalyticsThroughputSerializer(S.Serializer[Any]):
    agent_id = S.CharField()
    resolved = S.IntegerField()
    replies = S.IntegerField()


class AnalyticsDraftsSerializer(S.Serializer[Any]):
    agent_id = S.CharField()
    drafts = S.IntegerField(help_text="Drafts that came back ready in the range.")
    sent = S.IntegerField(help_text="Of those, sent as a reply (ReplySentFromDraft).")
    acceptance_pct = S.FloatField(allow_null=True)
    edit_distance_avg = S.FloatField(allow_null=True, help_text="Characters, over sent ones.")
    edit_pct_avg = S.FloatField(allow_null=True, help_text="Distance / draft length, %.")


class AnalyticsRatingSerializer(S.Serializer[Any]):
    rating = S.IntegerField(help_text="1 (very bad) .. 5 (very good).")
    tickets = S.IntegerField()


class AnalyticsCsatSerializer(S.Serializer[Any]):
    ratings = S.IntegerField(help_text="Tickets whose latest rating was given in the range.")
    average = S.FloatField(allow_null=True, help_text="Average rating, 1-5.")
    satisfied_pct = S.FloatField(allow_null=True, help_text="Rated 4 or 5, %.")


class AnalyticsCsatAgentSerializer(AnalyticsCsatSerializer):
    agent_id = S.CharField(allow_blank=True, help_text="The ticket's agent now ('': none).")


class AnalyticsCsatTeamSerializer(AnalyticsCsatSerializer):
    team = S.CharField(allow_blank=True, help_text="The ticket's team now ('': none).")


class AnalyticsSatisfactionSerializer(AnalyticsCsatSerializer):
    distribution = AnalyticsRatingSerializer(many=True)
    by_agent = AnalyticsCsatAgentSerializer(many=True)
    by_team = AnalyticsCsatTeamSerializer(many=True)


class AnalyticsReopensSerializer(S.Serializer[Any]):
    reopened = S.IntegerField()
    resolved = S.IntegerField()
    reopen_rate_pct = S.FloatField(allow_null=True)


class AnalyticsVolumeSerializer(S.Serializer[Any]):
    """One row: the key named by ``by`` (only that one), and its tickets."""

    priority = S.CharField(required=False)
    language = S.CharField(required=False)
    tag = S.CharField(required=False)
    channel = S.CharField(required=False)
    tickets = S.IntegerField()


def _envelope(name: str, data: S.Field[Any, Any, Any, Any]) -> type[S.Serializer[Any]]:
    attrs = {"filters": AnalyticsFiltersSerializer(), "data": data}
    return type(f"Analytics{name}Response", (S.Serializer,), attrs)


def _schema(
    summary: str, name: str, data: S.Field[Any, Any, Any, Any], *extra: OpenApiParameter
) -> Any:
    return extend_schema(
        summary=summary,
        parameters=[*PARAMETERS, *extra],
        responses={200: _envelope(name, data)},  # errors: ApiAutoSchema, by error_statuses
        tags=["analytics"],
    )


@_schema(
    "KPI cards: open now, created, resolved, median and average times, SLA, reopens",
    "Summary",
    AnalyticsSummarySerializer(),
)
class SummaryView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.summary(f)


@_schema("Tickets open now, in all and by status", "Open", AnalyticsOpenSerializer())
class OpenView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.open_now(f)


@_schema(
    "Per day: the tickets opened by its end, by their status at its end",
    "StatusOverTime",
    AnalyticsStatusDaySerializer(many=True),
)
class StatusOverTimeView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.status_over_time(f)


@_schema("Tickets created and resolved per day", "Daily", AnalyticsDaySerializer(many=True))
class DailyView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.daily(f)


def _clock(request: Request) -> str:
    clock = request.query_params.get("clock", "wall")
    if clock not in Metrics.CLOCKS:
        raise _bad("clock", f"One of {list(Metrics.CLOCKS)}.")
    return clock


@_schema(
    "First-response time: median, p90, average, distribution (seconds)",
    "FirstResponse",
    AnalyticsDurationSerializer(),
    CLOCK,
)
class FirstResponseView(AnalyticsView):
    extra = frozenset({"clock"})

    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.first_response(f, _clock(request))


@_schema(
    "Resolution time: median, p90, average, distribution (seconds)",
    "Resolution",
    AnalyticsDurationSerializer(),
    CLOCK,
)
class ResolutionView(AnalyticsView):
    extra = frozenset({"clock"})

    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.resolution(f, _clock(request))


@_schema("SLA breaches and compliance %", "Sla", AnalyticsSlaSerializer())
class SlaView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.sla(f)


@_schema("Open tickets per agent", "Backlog", AnalyticsBacklogSerializer(many=True))
class BacklogView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.backlog(f)


@_schema(
    "Per agent: tickets resolved and replies sent",
    "Throughput",
    AnalyticsThroughputSerializer(many=True),
)
class ThroughputView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.throughput(f)


@_schema(
    "Per agent: AI drafts ready, sent, acceptance rate and average edit",
    "Drafts",
    AnalyticsDraftsSerializer(many=True),
)
class DraftsView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.drafts(f)


@_schema(
    "Customer satisfaction (CSAT): ratings, average, % satisfied, per rating, agent and team",
    "Satisfaction",
    AnalyticsSatisfactionSerializer(),
)
class SatisfactionView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.satisfaction(f)


@_schema("Reopen rate: reopens per resolution", "Reopens", AnalyticsReopensSerializer())
class ReopensView(AnalyticsView):
    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        return m.reopen_rate(f)


@_schema(
    "Tickets opened, by priority, tag, language or channel",
    "Volume",
    AnalyticsVolumeSerializer(many=True),
    BY,
)
class VolumeView(AnalyticsView):
    extra = frozenset({"by"})

    def compute(self, m: Metrics, f: Filters, request: Request) -> Any:
        by = request.query_params.get("by", "priority")
        if by not in Metrics.VOLUME_BY:
            raise _bad("by", f"One of {sorted(Metrics.VOLUME_BY)}.")
        return m.volume(f, by)
