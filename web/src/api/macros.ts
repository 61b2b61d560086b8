// Macros (canned replies) and saved filters: fetchers, query keys and hooks.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { command, request } from "../lib/api";
import type { FilledMacro, Macro, SavedFilter, Status, TicketFilters } from "../lib/types";

export interface MacroInput {
  name: string;
  body: string;
  status: Status | null;
  add_tags: string[];
  assign_to: string | null;
  shared?: boolean;
}

export const macroKeys = { all: ["macros"] as const };

/** The macros I may apply: shared ones first, then mine (staff). */
export function useMacros(enabled: boolean) {
  return useQuery({
    queryKey: macroKeys.all,
    queryFn: () => request<Macro[]>("/api/macros", { consistent: true }),
    enabled,
    staleTime: 60_000,
  });
}

/** One macro filled in for a ticket: the reply text and the changes to ask for. */
export function fillMacro(macroId: string, ticketId: string): Promise<FilledMacro> {
  return request<FilledMacro>(
    `/api/macros/${macroId}/filled?ticket=${encodeURIComponent(ticketId)}`,
    { consistent: true },
  );
}

export function useSaveMacro() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, input }: { id?: string; input: MacroInput }) =>
      id
        ? command(`/api/macros/${id}`, { method: "PATCH", body: input })
        : command("/api/macros", { method: "POST", body: input }),
    onSettled: () => client.invalidateQueries({ queryKey: macroKeys.all }),
  });
}

export function useDeleteMacro() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => command(`/api/macros/${id}`, { method: "DELETE" }),
    onSettled: () => client.invalidateQueries({ queryKey: macroKeys.all }),
  });
}

/** My saved filters with live counts; under ["tickets"] so list changes refetch them. */
export function useSavedFilters(enabled: boolean) {
  return useQuery({
    queryKey: ["tickets", "saved-filters"],
    queryFn: () => request<SavedFilter[]>("/api/saved-filters", { consistent: true }),
    enabled,
  });
}

/** The list's filters as a saved filter holds them (the subset the server stores). */
export function savedValues(filters: TicketFilters, view?: string): SavedFilter["filters"] {
  const out: SavedFilter["filters"] = {};
  if (filters.status?.length) out.status = filters.status;
  if (filters.priority?.length) out.priority = filters.priority;
  if (filters.tags?.length) out.tags = filters.tags;
  if (filters.agent) out.agent = filters.agent;
  if (view && view !== "all") out.view = view as NonNullable<SavedFilter["filters"]["view"]>;
  return out;
}

export function useSaveFilter() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (input: { name: string; filters: SavedFilter["filters"] }) =>
      request<SavedFilter>("/api/saved-filters", { method: "POST", body: input }),
    onSettled: () => client.invalidateQueries({ queryKey: ["tickets", "saved-filters"] }),
  });
}

export function useDeleteFilter() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: number) => request<unknown>(`/api/saved-filters/${id}`, { method: "DELETE" }),
    onSettled: () => client.invalidateQueries({ queryKey: ["tickets", "saved-filters"] }),
  });
}
