// The dashboard's reads: GET /api/analytics/<metric> (admins only; docs/analytics.md defines
// each metric). Every read is consistent (?after= the newest position this tab knows), so a
// refetch triggered by a queue frame waits until analytics reflect that frame.
// The schema types these answers as plain objects, so their shapes are written here.

import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { request } from "../../lib/api";
import type { Status } from "../../lib/types";
import { apiQuery, type AnalyticsFilters } from "./filters";

export interface Envelope<T> {
  filters: Record<string, unknown>;
  data: T;
}

export interface Summary {
  open: number;
  created: number;
  resolved: number;
  resolution_median_seconds: number | null;
  resolution_average_seconds: number | null;
  first_response_median_seconds: number | null;
  sla_breaches: number;
  sla_compliance_pct: number | null;
  reopen_rate_pct: number | null;
}

export interface DailyPoint {
  day: string;
  created: number;
  resolved: number;
}

export interface StatusDay {
  day: string;
  by_status: Partial<Record<Status, number>>;
}

export interface Duration {
  count: number;
  median: number | null;
  p90: number | null;
  average: number | null;
  clock: "wall" | "business";
  distribution: { bucket: string; tickets: number }[];
}

export interface BacklogRow {
  agent_id: string;
  open: number;
}

export type Metric =
  "summary" | "daily" | "status-over-time" | "first-response" | "resolution" | "backlog";

export const analyticsKeys = {
  all: ["analytics"] as const,
  metric: (metric: Metric, filters: AnalyticsFilters) => ["analytics", metric, filters] as const,
};

/** A safety net for what the queue stream does not carry (messages, SLA breaches). */
export const REFRESH_MS = 30_000;

function useMetric<T>(metric: Metric, filters: AnalyticsFilters) {
  return useQuery({
    queryKey: analyticsKeys.metric(metric, filters),
    queryFn: ({ signal }) =>
      request<Envelope<T>>(`/api/analytics/${metric}${apiQuery(filters)}`, {
        consistent: true,
        signal,
      }),
    placeholderData: keepPreviousData,
    refetchInterval: REFRESH_MS,
    staleTime: 0,
  });
}

export const useSummary = (f: AnalyticsFilters) => useMetric<Summary>("summary", f);
export const useDaily = (f: AnalyticsFilters) => useMetric<DailyPoint[]>("daily", f);
export const useStatusOverTime = (f: AnalyticsFilters) =>
  useMetric<StatusDay[]>("status-over-time", f);
export const useFirstResponse = (f: AnalyticsFilters) => useMetric<Duration>("first-response", f);
export const useResolution = (f: AnalyticsFilters) => useMetric<Duration>("resolution", f);
export const useBacklog = (f: AnalyticsFilters) => useMetric<BacklogRow[]>("backlog", f);
