import { useQuery } from "@tanstack/react-query";
import { query, request } from "../lib/api";
import type { SearchResponse } from "../lib/types";

export function useSearch(q: string) {
  return useQuery({
    queryKey: ["search", q],
    queryFn: () =>
      request<SearchResponse>(`/api/search${query({ q, page_size: 10 })}`, { consistent: true }),
    enabled: q.trim().length > 0,
  });
}
