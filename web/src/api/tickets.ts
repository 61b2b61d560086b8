// Ticket reads and commands: fetchers, query keys and hooks (TanStack Query), with optimistic
// updates that roll back when the server refuses.

import {
  useInfiniteQuery,
  useMutation,
  useQuery,
  useQueryClient,
  type InfiniteData,
} from "@tanstack/react-query";
import { ApiError, command, notePosition, query, request, requestRaw } from "../lib/api";
import type {
  Attachment,
  History,
  Message,
  MessageResult,
  MessageList,
  Priority,
  Status,
  Ticket,
  TicketAsOf,
  TicketFilters,
  TicketList,
  TicketView,
} from "../lib/types";

export const keys = {
  tickets: (scope: string, filters: TicketFilters) => ["tickets", scope, filters] as const,
  ticket: (id: string) => ["ticket", id] as const,
  messages: (id: string) => ["messages", id] as const,
  history: (id: string) => ["history", id] as const,
  asOf: (id: string, at: string) => ["as-of", id, at] as const,
};

/** The path and query of an absolute `next` link (the API answers absolute URLs). */
export function pathOf(url: string): string {
  const parsed = new URL(url, "http://x");
  return parsed.pathname + parsed.search;
}

function dayStart(date: string | undefined): string | undefined {
  return date ? new Date(`${date}T00:00:00`).toISOString() : undefined;
}

export function ticketListPath(filters: TicketFilters, pageSize = 50): string {
  return (
    "/api/tickets" +
    query({
      status: filters.status,
      priority: filters.priority,
      tags: filters.tags,
      agent: filters.agent,
      customer: filters.customer,
      sla_breached: filters.sla_breached === undefined ? undefined : String(filters.sla_breached),
      // "Created before" a day: up to the start of that day, the day itself not included.
      created_from: dayStart(filters.created_from),
      created_to: dayStart(filters.created_to),
      sort: filters.sort,
      view: filters.view,
      page_size: pageSize,
    })
  );
}

export interface TicketPage extends TicketList {
  position: number | null;
}

export async function fetchTicketPage(path: string): Promise<TicketPage> {
  const { data, headers } = await requestRaw<TicketList>(path, { consistent: true });
  const position = Number(headers.get("X-Deskstream-Position") ?? NaN);
  return { ...data, position: Number.isFinite(position) ? position : null };
}

export function useTicketList(scope: string, filters: TicketFilters, pageSize = 50) {
  return useInfiniteQuery({
    queryKey: keys.tickets(scope, filters),
    queryFn: ({ pageParam }) => fetchTicketPage(pageParam),
    initialPageParam: ticketListPath(filters, pageSize),
    getNextPageParam: (last) => (last.next ? pathOf(last.next) : undefined),
  });
}

export function flattenTickets(data: InfiniteData<TicketPage> | undefined): Ticket[] {
  const seen = new Set<string>();
  const out: Ticket[] = [];
  for (const page of data?.pages ?? []) {
    for (const t of page.results) {
      if (!seen.has(t.id)) {
        seen.add(t.id);
        out.push(t);
      }
    }
  }
  return out;
}

/** The built-in views with their counts (staff); under ["tickets"], so every change that
 * refetches the lists refetches the counts too. */
export function useTicketViews(enabled: boolean) {
  return useQuery({
    queryKey: ["tickets", "views"],
    queryFn: () => request<TicketView[]>("/api/ticket-views", { consistent: true }),
    enabled,
  });
}

export function useTicket(id: string) {
  return useQuery({
    queryKey: keys.ticket(id),
    queryFn: () => request<Ticket>(`/api/tickets/${id}`, { consistent: true }),
    retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
  });
}

export async function fetchMessages(id: string): Promise<Message[]> {
  const messages: Message[] = [];
  let path: string | null = `/api/tickets/${id}/messages?page_size=200`;
  for (let i = 0; path && i < 20; i++) {
    const page: MessageList = await request<MessageList>(path, { consistent: true });
    messages.push(...page.results);
    path = page.next ? pathOf(page.next) : null;
  }
  return messages;
}

export function useMessages(id: string, enabled = true) {
  return useQuery({ queryKey: keys.messages(id), queryFn: () => fetchMessages(id), enabled });
}

/** The thread as fetched, plus what live frames brought that the read model did not have
 * yet (it may lag behind the push stream): fetched messages win, they carry `body_html`. */
export function mergeThread(current: Message[] | undefined, fetched: Message[]): Message[] {
  const ids = new Set(fetched.map((m) => m.id));
  const extra = (current ?? []).filter((m) => !ids.has(m.id) && !m.pending);
  return [...fetched, ...extra].sort((a, b) => a.version - b.version);
}

export function mergeMessage(list: Message[] | undefined, message: Message): Message[] {
  const known = list?.find((m) => m.id === message.id);
  if (known?.body_html !== undefined && message.body_html === undefined)
    message = { ...message, body_html: known.body_html }; // a frame after the list: same text
  const all = (list ?? []).filter(
    (m) =>
      m.id !== message.id &&
      !(m.pending && m.body === message.body && m.internal === message.internal),
  );
  all.push(message);
  return all.sort((a, b) => a.version - b.version);
}

export interface NewTicket {
  subject: string;
  description: string;
  /** Only when the user may set it (Me.may_set_priority); otherwise Medium. */
  priority?: Priority;
}

export function useCreateTicket() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: NewTicket) => command("/api/tickets", { method: "POST", body }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["tickets"] }),
  });
}

export interface Reply {
  body: string;
  internal: boolean;
  ifMatch?: number;
  attachments?: Attachment[];
  /** The AI draft this reply started from (records how much it was edited). */
  draftId?: string;
}

/** Post a message. It shows at once (pending); a refusal removes it again and the caller
 * gets the error (409 stale_reply carries the newer messages). */
export function usePostMessage(ticketId: string, me: { id: number; role: Message["author_role"] }) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (reply: Reply): Promise<MessageResult> =>
      // The message command also names the new message (MessageResult).
      (await command(`/api/tickets/${ticketId}/messages`, {
        method: "POST",
        body: {
          body: reply.body,
          internal: reply.internal,
          ...(reply.attachments ? { attachments: reply.attachments } : {}),
          ...(reply.draftId && !reply.internal ? { draft_id: reply.draftId } : {}),
        },
        headers: reply.ifMatch ? { "If-Match": `"${reply.ifMatch}"` } : undefined,
      })) as MessageResult,
    onMutate: async (reply) => {
      await client.cancelQueries({ queryKey: keys.messages(ticketId) });
      const previous = client.getQueryData<Message[]>(keys.messages(ticketId));
      const optimistic: Message = {
        id: `pending-${Date.now()}`,
        version: Number.MAX_SAFE_INTEGER,
        author_id: String(me.id),
        author_role: me.role,
        body: reply.body,
        internal: reply.internal,
        attachments: reply.attachments ?? [],
        posted_at: new Date().toISOString(),
        pending: true,
      };
      client.setQueryData<Message[]>(keys.messages(ticketId), (list) => [
        ...(list ?? []),
        optimistic,
      ]);
      return { previous };
    },
    onError: (error, _reply, context) => {
      client.setQueryData(keys.messages(ticketId), context?.previous);
      if (error instanceof ApiError && error.code === "stale_reply") {
        const newer = (error.body.messages as Message[] | undefined) ?? [];
        client.setQueryData<Message[]>(keys.messages(ticketId), (list) =>
          newer.reduce((acc, m) => mergeMessage(acc, m), list ?? []),
        );
        client.setQueryData<Ticket>(keys.ticket(ticketId), (t) =>
          t ? { ...t, version: Math.max(t.version, Number(error.body.current_version ?? 0)) } : t,
        );
      }
    },
    onSettled: () => {
      void client.invalidateQueries({ queryKey: keys.messages(ticketId) });
      void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
    },
  });
}

/** Change the status; the badge changes at once and goes back if the move is refused. */
export function useChangeStatus(ticketId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (status: Status) =>
      command(`/api/tickets/${ticketId}/status`, { method: "POST", body: { status } }),
    onMutate: async (status) => {
      await client.cancelQueries({ queryKey: keys.ticket(ticketId) });
      const previous = client.getQueryData<Ticket>(keys.ticket(ticketId));
      client.setQueryData<Ticket>(keys.ticket(ticketId), (t) => (t ? { ...t, status } : t));
      return { previous };
    },
    onError: (_e, _s, context) => client.setQueryData(keys.ticket(ticketId), context?.previous),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
      void client.invalidateQueries({ queryKey: ["tickets"] });
    },
  });
}

export function useAssign(ticketId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (agentId: number | null) =>
      command(`/api/tickets/${ticketId}/assign`, { method: "POST", body: { agent_id: agentId } }),
    onMutate: async (agentId) => {
      await client.cancelQueries({ queryKey: keys.ticket(ticketId) });
      const previous = client.getQueryData<Ticket>(keys.ticket(ticketId));
      client.setQueryData<Ticket>(keys.ticket(ticketId), (t) =>
        t ? { ...t, assigned_agent_id: agentId === null ? null : String(agentId) } : t,
      );
      return { previous };
    },
    onError: (_e, _a, context) => client.setQueryData(keys.ticket(ticketId), context?.previous),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
      void client.invalidateQueries({ queryKey: ["tickets"] });
      void client.invalidateQueries({ queryKey: ["agents"] });
    },
  });
}

export interface TicketEdit {
  priority?: Priority;
  tags?: string[];
}

/** Edit priority or tags (staff); the ticket shows the change at once, back if refused. */
/** Route the ticket to a team (or to none): automatic assignment then picks among its
 * members. Shown once the server has it (no optimistic change: it is staff bookkeeping). */
export function useSetTeam(ticketId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (teamId: string | null) =>
      command(`/api/tickets/${ticketId}/team`, { method: "PUT", body: { team_id: teamId } }),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
    },
  });
}

export function useEditTicket(ticketId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (edit: TicketEdit) =>
      command(`/api/tickets/${ticketId}`, { method: "PATCH", body: edit }),
    onMutate: async (edit) => {
      await client.cancelQueries({ queryKey: keys.ticket(ticketId) });
      const previous = client.getQueryData<Ticket>(keys.ticket(ticketId));
      client.setQueryData<Ticket>(keys.ticket(ticketId), (t) => (t ? { ...t, ...edit } : t));
      return { previous };
    },
    onError: (_e, _a, context) => client.setQueryData(keys.ticket(ticketId), context?.previous),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
      void client.invalidateQueries({ queryKey: ["tickets"] });
    },
  });
}

export function useHistory(id: string) {
  return useQuery({
    queryKey: keys.history(id),
    queryFn: () => request<History>(`/api/tickets/${id}/history`),
  });
}

export function useAsOf(id: string, at: string | null) {
  return useQuery({
    queryKey: keys.asOf(id, at ?? ""),
    queryFn: () => request<TicketAsOf>(`/api/tickets/${id}${query({ as_of: at })}`),
    enabled: at !== null && at !== "",
    staleTime: Infinity,
    retry: false,
  });
}

export { notePosition };
