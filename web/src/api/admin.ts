// The admin console's API calls: agents, teams, audit, projections, settings, customers.
// Every command invalidates the queries it changes; reads that follow a command carry
// ?after= (consistent) where a projection serves them.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { command, query, request, requestRaw, tokens } from "../lib/api";
import type {
  AdminAgentPage,
  AdminTeamPage,
  AssignmentSettings,
  AuditPage,
  CalendarSettings,
  DraftSettings,
  CustomerPage,
  CustomerProfile,
  EmailPreview,
  EmailTemplate,
  OutboxList,
  OutboxMessage,
  ProjectorStatus,
  RateLimits,
  Rebuild,
  RebuildPage,
  RebuildStarted,
  SlaSettings,
  StaffRole,
  StaffUser,
  TicketIntake,
  TicketList,
} from "../lib/types";

// ----------------------------------------------------------------------------- agents
export function useAdminAgents(cursor: string | null) {
  return useQuery({
    queryKey: ["admin", "agents", cursor],
    queryFn: () =>
      request<AdminAgentPage>(`/api/admin/agents${query({ cursor, page_size: 50 })}`, {
        consistent: true,
      }),
  });
}

function useInvalidate(...keys: string[][]) {
  const client = useQueryClient();
  return () => Promise.all(keys.map((queryKey) => client.invalidateQueries({ queryKey })));
}

export function useInvite() {
  const invalidate = useInvalidate(["admin", "agents"]);
  return useMutation({
    mutationFn: (body: { email: string; name: string; role: StaffRole }) =>
      request<StaffUser>("/api/admin/agents/invite", { method: "POST", body }),
    onSuccess: invalidate,
  });
}

export function useSetActive() {
  const invalidate = useInvalidate(["admin", "agents"]);
  return useMutation({
    mutationFn: ({ id, active }: { id: string; active: boolean }) =>
      request<StaffUser>(`/api/admin/agents/${id}/${active ? "reactivate" : "deactivate"}`, {
        method: "POST",
      }),
    onSuccess: invalidate,
  });
}

export function useSetRole() {
  const invalidate = useInvalidate(["admin", "agents"]);
  return useMutation({
    mutationFn: ({ id, role }: { id: string; role: StaffRole }) =>
      request<StaffUser>(`/api/admin/agents/${id}/role`, { method: "PUT", body: { role } }),
    onSuccess: invalidate,
  });
}

export interface ProfileChange {
  capacity?: number;
  skills?: string[];
  languages?: string[];
}

export function useSetProfile() {
  const invalidate = useInvalidate(["admin", "agents"]);
  return useMutation({
    mutationFn: ({ id, change }: { id: string; change: ProfileChange }) =>
      command(`/api/agents/${id}/profile`, { method: "PATCH", body: change }),
    onSuccess: invalidate,
  });
}

export function useSetWorkingHours() {
  const invalidate = useInvalidate(["admin", "agents"]);
  return useMutation({
    mutationFn: ({ id, hours }: { id: string; hours: unknown }) =>
      command(`/api/agents/${id}/working-hours`, {
        method: "PUT",
        body: { working_hours: hours },
      }),
    onSuccess: invalidate,
  });
}

// ----------------------------------------------------------------------------- teams
export function useTeams(enabled = true) {
  return useQuery({
    enabled,
    queryKey: ["admin", "teams"],
    queryFn: () => request<AdminTeamPage>("/api/admin/teams?page_size=200", { consistent: true }),
  });
}

export function useTeamCommand() {
  const invalidate = useInvalidate(["admin", "teams"], ["admin", "agents"]);
  return useMutation({
    mutationFn: (
      change:
        | { kind: "create"; name: string }
        | { kind: "edit"; id: string; name?: string; archived?: boolean }
        | { kind: "add"; id: string; userId: string }
        | { kind: "remove"; id: string; userId: string },
    ) => {
      switch (change.kind) {
        case "create":
          return command("/api/admin/teams", { method: "POST", body: { name: change.name } });
        case "edit": {
          const body: { name?: string; archived?: boolean } = {};
          if (change.name !== undefined) body.name = change.name;
          if (change.archived !== undefined) body.archived = change.archived;
          return command(`/api/admin/teams/${change.id}`, { method: "PATCH", body });
        }
        case "add":
          return command(`/api/admin/teams/${change.id}/members`, {
            method: "POST",
            body: { user_id: change.userId },
          });
        case "remove":
          return command(`/api/admin/teams/${change.id}/members/${change.userId}`, {
            method: "DELETE",
          });
      }
    },
    onSuccess: invalidate,
  });
}

// ----------------------------------------------------------------------------- audit
export interface AuditFilters {
  actor?: string;
  type?: string;
  ticket?: string;
  since?: string;
  until?: string;
}

export function useAudit(filters: AuditFilters, before: number | null) {
  return useQuery({
    queryKey: ["admin", "audit", filters, before],
    queryFn: () =>
      request<AuditPage>(`/api/admin/audit${query({ ...filters, before, page_size: 50 })}`),
  });
}

/** Download the filtered events as CSV (with the bearer token, so not a plain link). */
export async function downloadAuditCsv(filters: AuditFilters): Promise<void> {
  const response = await fetch(`/api/admin/audit.csv${query({ ...filters })}`, {
    headers: { Accept: "text/csv", Authorization: `Bearer ${tokens.access ?? ""}` },
  });
  if (!response.ok) throw new Error(`Export failed (${response.status})`);
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = "audit.csv";
  a.click();
  URL.revokeObjectURL(url);
}

// ----------------------------------------------------------------------------- projections
export function useProjectors() {
  return useQuery({
    queryKey: ["admin", "projectors"],
    queryFn: () => request<ProjectorStatus[]>("/api/admin/projections"),
    refetchInterval: 3_000,
  });
}

export function useRebuilds() {
  return useQuery({
    queryKey: ["admin", "rebuilds"],
    queryFn: () => request<RebuildPage>("/api/admin/projections/rebuilds?page_size=10"),
    // Live progress while one runs.
    refetchInterval: (q) =>
      q.state.data?.results.some((r) => r.state === "running") ? 500 : 5_000,
  });
}

export function useStartRebuild() {
  const invalidate = useInvalidate(["admin", "rebuilds"]);
  return useMutation({
    mutationFn: (name: string) =>
      request<RebuildStarted>(`/api/admin/projections/${name}/rebuild`, { method: "POST" }),
    onSuccess: invalidate,
  });
}

export type { Rebuild };

// ----------------------------------------------------------------------------- settings
function useSetting<T>(key: string, path: string) {
  return useQuery({
    queryKey: ["admin", "settings", key],
    queryFn: () => request<T>(path),
  });
}

function useSaveSetting<T>(key: string, path: string) {
  const invalidate = useInvalidate(["admin", "settings", key]);
  return useMutation({
    mutationFn: (body: T) => request<T>(path, { method: "PUT", body }),
    onSuccess: invalidate,
  });
}

export const useCalendar = () => useSetting<CalendarSettings>("calendar", "/api/settings/calendar");
export const useSaveCalendar = () =>
  useSaveSetting<CalendarSettings>("calendar", "/api/settings/calendar");
export const useSla = () => useSetting<SlaSettings>("sla", "/api/settings/sla");
export const useSaveSla = () => useSaveSetting<SlaSettings>("sla", "/api/settings/sla");
export const useAssignment = () =>
  useSetting<AssignmentSettings>("assignment", "/api/settings/assignment");
export const useSaveAssignment = () =>
  useSaveSetting<AssignmentSettings>("assignment", "/api/settings/assignment");
export const useIntake = () => useSetting<TicketIntake>("tickets", "/api/settings/tickets");
export const useRateLimits = () =>
  useSetting<RateLimits>("rate-limits", "/api/settings/rate-limits");
export const useSaveRateLimits = () =>
  useSaveSetting<RateLimits>("rate-limits", "/api/settings/rate-limits");
export const useSaveIntake = () => useSaveSetting<TicketIntake>("tickets", "/api/settings/tickets");
export const useDraftSettings = () => useSetting<DraftSettings>("drafts", "/api/settings/drafts");
/** ``source`` is the server's to say: not sent back. */
export const useSaveDraftSettings = () =>
  useSaveSetting<Omit<DraftSettings, "source">>("drafts", "/api/settings/drafts");
export interface SlaReminderSettings {
  minutes_before: number;
}
export const useSlaReminders = () =>
  useSetting<SlaReminderSettings>("sla-reminders", "/api/settings/sla-reminders");
export const useSaveSlaReminders = () =>
  useSaveSetting<SlaReminderSettings>("sla-reminders", "/api/settings/sla-reminders");
export const useTemplates = () =>
  useSetting<EmailTemplate[]>("templates", "/api/settings/email-templates");

export interface TemplateDraft {
  subject: string;
  text_body: string;
  html_body: string;
}

export function useSaveTemplate() {
  const invalidate = useInvalidate(["admin", "settings", "templates"]);
  return useMutation({
    mutationFn: ({ kind, draft }: { kind: string; draft: TemplateDraft | null }) =>
      request<EmailTemplate>(`/api/settings/email-templates/${kind}`, {
        method: draft ? "PUT" : "DELETE",
        body: draft ?? undefined,
      }),
    onSuccess: invalidate,
  });
}

export function previewTemplate(kind: string, draft: TemplateDraft, signal?: AbortSignal) {
  return request<EmailPreview>(`/api/settings/email-templates/${kind}/preview`, {
    method: "POST",
    body: draft,
    signal,
  });
}

export const useOutbox = () => useSetting<OutboxList>("outbox", "/api/outbox?limit=50");

export function useOutboxMessage(name: string | null) {
  return useQuery({
    queryKey: ["admin", "outbox", name],
    queryFn: () => request<OutboxMessage>(`/api/outbox/${encodeURIComponent(name ?? "")}`),
    enabled: name !== null,
  });
}

// ----------------------------------------------------------------------------- customers
export function useCustomers(cursor: string | null) {
  return useQuery({
    queryKey: ["admin", "customers", cursor],
    queryFn: () => request<CustomerPage>(`/api/customers${query({ cursor, page_size: 50 })}`),
  });
}

export function useCustomer(id: string) {
  return useQuery({
    queryKey: ["admin", "customer", id],
    queryFn: () => request<CustomerProfile>(`/api/admin/customers/${id}`),
  });
}

export function useCustomerTickets(id: string) {
  return useQuery({
    queryKey: ["admin", "customer", id, "tickets"],
    queryFn: async () =>
      (await requestRaw<TicketList>(`/api/tickets${query({ customer: id, page_size: 50 })}`)).data,
  });
}

/** The cursor of a page link (`next`/`previous`), for the page's own state. */
export function cursorOf(link: string | null | undefined): string | null {
  if (!link) return null;
  return new URL(link, "http://x").searchParams.get("cursor");
}
