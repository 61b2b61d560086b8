import { useQuery } from "@tanstack/react-query";
import { query, request } from "../lib/api";
import type { SearchResponse, TicketFilters } from "../lib/types";

export const SEARCH_PAGE_SIZE = 10;

function dayStart(date: string | undefined): string | undefined {
  return date ? new Date(`${date}T00:00:00`).toISOString() : undefined;
}

export function searchPath(
  q: string,
  filters: TicketFilters = {},
  options: { kind?: string; page?: number } = {},
): string {
  return `/api/search${query({
    q,
    kind: options.kind,
    page: options.page,
    page_size: SEARCH_PAGE_SIZE,
    status: filters.status,
    priority: filters.priority,
    created_from: dayStart(filters.created_from),
    created_to: dayStart(filters.created_to),
  })}`;
}

export function fetchSearch(path: string): Promise<SearchResponse> {
  return request<SearchResponse>(path, { consistent: true });
}

export function useSearch(q: string, filters: TicketFilters = {}) {
  return useQuery({
    queryKey: ["search", q, filters],
    queryFn: () => fetchSearch(searchPath(q, filters)),
    enabled: q.trim().length > 0,
  });
}
