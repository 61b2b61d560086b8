// The dashboard's reads: GET /api/analytics/<metric> (admins only; docs/analytics.md defines
// each metric). Every read is consistent (?after= the newest position this tab knows), so a
// refetch triggered by a queue frame waits until analytics reflect that frame.
// The answers' types are generated from the OpenAPI schema (openapi.gen.ts).

import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { request } from "../../lib/api";
import type { components } from "../../lib/openapi.gen";
import { apiQuery, type AnalyticsFilters } from "./filters";

type Schemas = components["schemas"];
export type Summary = Schemas["AnalyticsSummary"];
export type DailyPoint = Schemas["AnalyticsDay"];
export type StatusDay = Schemas["AnalyticsStatusDay"];
export type Duration = Schemas["AnalyticsDuration"];
export type BacklogRow = Schemas["AnalyticsBacklog"];
export type DraftsRow = Schemas["AnalyticsDrafts"];
export type Satisfaction = Schemas["AnalyticsSatisfaction"];

interface Answers {
  summary: Schemas["AnalyticsSummaryResponse"];
  daily: Schemas["AnalyticsDailyResponse"];
  "status-over-time": Schemas["AnalyticsStatusOverTimeResponse"];
  "first-response": Schemas["AnalyticsFirstResponseResponse"];
  resolution: Schemas["AnalyticsResolutionResponse"];
  backlog: Schemas["AnalyticsBacklogResponse"];
  drafts: Schemas["AnalyticsDraftsResponse"];
  satisfaction: Schemas["AnalyticsSatisfactionResponse"];
}

export type Metric = keyof Answers;

export const analyticsKeys = {
  all: ["analytics"] as const,
  metric: (metric: Metric, filters: AnalyticsFilters) => ["analytics", metric, filters] as const,
};

/** A safety net for what the queue stream does not carry (messages, SLA breaches). */
export const REFRESH_MS = 30_000;

function useMetric<M extends Metric>(metric: M, filters: AnalyticsFilters) {
  return useQuery({
    queryKey: analyticsKeys.metric(metric, filters),
    queryFn: ({ signal }) =>
      request<Answers[M]>(`/api/analytics/${metric}${apiQuery(filters)}`, {
        consistent: true,
        signal,
      }),
    placeholderData: keepPreviousData,
    refetchInterval: REFRESH_MS,
    staleTime: 0,
  });
}

export const useSummary = (f: AnalyticsFilters) => useMetric("summary", f);
export const useDaily = (f: AnalyticsFilters) => useMetric("daily", f);
export const useStatusOverTime = (f: AnalyticsFilters) => useMetric("status-over-time", f);
export const useFirstResponse = (f: AnalyticsFilters) => useMetric("first-response", f);
export const useResolution = (f: AnalyticsFilters) => useMetric("resolution", f);
export const useBacklog = (f: AnalyticsFilters) => useMetric("backlog", f);
export const useDrafts = (f: AnalyticsFilters) => useMetric("drafts", f);
export const useSatisfaction = (f: AnalyticsFilters) => useMetric("satisfaction", f);
