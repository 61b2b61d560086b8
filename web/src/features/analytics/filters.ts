// The dashboard's filters and the URL: every filter is a search parameter, so a view can be
// bookmarked, shared and reloaded as it was. Empty values stay out of the URL.

import { PRIORITIES, type Priority } from "../../lib/types";

export interface AnalyticsFilters {
  from?: string; // YYYY-MM-DD, inclusive, in tz
  to?: string;
  tz: string;
  priority: Priority[];
  agent?: string; // a user id, or "none" for unassigned
  team?: string; // a team's id, or "none" for tickets in no team
  tag?: string;
}

export const FILTER_KEYS = ["from", "to", "tz", "priority", "agent", "team", "tag"] as const;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const TEAM = /^(none|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** The browser's own time zone, the default when the URL names none. */
export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** Filters from the URL; values the server would refuse are dropped here (not sent). */
export function readFilters(params: URLSearchParams): AnalyticsFilters {
  const day = (key: string) => {
    const value = params.get(key) ?? "";
    return DAY.test(value) ? value : undefined;
  };
  const priority = (params.get("priority") ?? "")
    .split(",")
    .filter((p): p is Priority => (PRIORITIES as readonly string[]).includes(p));
  return {
    from: day("from"),
    to: day("to"),
    tz: params.get("tz") || browserTimeZone(),
    priority,
    agent: params.get("agent") || undefined,
    team: TEAM.test(params.get("team") ?? "") ? (params.get("team") ?? undefined) : undefined,
    tag: params.get("tag")?.trim() || undefined,
  };
}

/** The URL's search parameters for ``filters`` (other parameters are kept). */
export function writeFilters(filters: AnalyticsFilters, base?: URLSearchParams): URLSearchParams {
  const params = new URLSearchParams(base);
  for (const key of FILTER_KEYS) params.delete(key);
  if (filters.from) params.set("from", filters.from);
  if (filters.to) params.set("to", filters.to);
  if (filters.tz) params.set("tz", filters.tz);
  if (filters.priority.length) params.set("priority", filters.priority.join(","));
  if (filters.agent) params.set("agent", filters.agent);
  if (filters.team) params.set("team", filters.team);
  if (filters.tag) params.set("tag", filters.tag);
  return params;
}

/** The API's query string for ``filters`` (plus ``extra``), in a stable order. */
export function apiQuery(filters: AnalyticsFilters, extra: Record<string, string> = {}): string {
  const params = writeFilters(filters);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  params.sort();
  const text = params.toString();
  return text ? `?${text}` : "";
}
