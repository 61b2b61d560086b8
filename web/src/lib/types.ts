// Shapes of the REST API (docs/api.md) and the WebSocket frames (docs/realtime.md).

export type Role = "customer" | "agent" | "admin";
export type Status =
  | "open"
  | "assigned"
  | "in_progress"
  | "waiting_on_customer"
  | "resolved"
  | "closed";
export type Priority = "low" | "medium" | "high" | "urgent";
export type Availability = "online" | "away" | "offline";

export const STATUSES: Status[] = [
  "open",
  "assigned",
  "in_progress",
  "waiting_on_customer",
  "resolved",
  "closed",
];
export const PRIORITIES: Priority[] = ["low", "medium", "high", "urgent"];

export interface Me {
  id: number;
  email: string;
  name: string;
  role: Role;
}

export interface TokenPair {
  access: string;
  refresh: string;
  token_type: string;
  expires_in: number;
}

export interface Providers {
  demo: boolean;
  providers: { id: string; name: string; url: string }[];
}

export interface CommandResult {
  id: string;
  version: number;
  position: number | null;
  /** Posting a message: the new message (its files are uploaded to it). */
  message_id?: string;
}

export type ScanStatus = "scanning" | "clean" | "infected";

/** A file: either metadata a message body listed (name, type, size) or an uploaded file
 * (id, scan status, and a signed `url` once it is clean). */
export interface Attachment {
  name: string;
  content_type?: string;
  size?: number;
  id?: string;
  status?: ScanStatus;
  url?: string | null;
  url_expires_at?: number | null;
  message_id?: string | null;
  internal?: boolean;
}

export interface Ticket {
  id: string;
  customer_id: string;
  subject: string;
  description: string;
  status: Status;
  priority: Priority;
  tags: string[];
  language: string;
  assigned_agent_id: string | null;
  version: number;
  position?: number;
  created_at: string;
  updated_at: string;
  last_message_at: string | null;
  resolved_at: string | null;
  closed_at: string | null;
  message_count?: number;
  attachments?: Attachment[];
}

export interface Message {
  id: string;
  ticket_id?: string;
  version: number;
  author_id: string;
  author_role: Role;
  body: string;
  internal: boolean;
  attachments: Attachment[];
  /** Files uploaded to this message. */
  files?: Attachment[];
  posted_at: string;
  position?: number;
  /** Client-side only: sent, not yet confirmed by the server. */
  pending?: boolean;
}

export interface TicketAsOf extends Ticket {
  messages: Message[];
}

export interface Page<T> {
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface HistoryEvent {
  version: number;
  type: string;
  time: string;
  actor: { id: string | null; role: Role | null };
  data: Record<string, unknown>;
}

export interface AgentWorkload {
  user_id: string;
  name: string;
  availability: Availability;
  capacity: number;
  skills: string[];
  languages: string[];
  open_tickets: number;
}

export interface Notification {
  id: string;
  kind: "public_reply" | "internal_note" | "status_changed" | "assigned" | "unassigned";
  ticket_id: string;
  read: boolean;
  created_at: string;
  position: number;
  payload: Record<string, unknown>;
}

export interface NotificationPage extends Page<Notification> {
  unread_count: number;
}

export interface SearchHit {
  id: string;
  ticket_id: string | null;
  customer_id: string;
  title: string;
  snippet: string;
  internal: boolean;
  status: Status | null;
  priority: Priority | null;
  occurred_at: string | null;
}

export interface SearchResponse {
  query: string;
  groups: Record<"tickets" | "messages" | "customers", { count: number; count_exact: boolean; results: SearchHit[] }>;
}

export interface TicketFilters {
  status?: Status[];
  priority?: Priority[];
  created_from?: string;
  created_to?: string;
  agent?: string;
}

// WebSocket frames (server -> client).
export interface EventFrame {
  type: "event";
  sub: string;
  stream: "ticket" | "queue" | "user";
  kind:
    | "ticket_created"
    | "message_posted"
    | "status_changed"
    | "assignment_changed"
    | "priority_changed"
    | "ticket_edited"
    | "attachment_uploaded"
    | "attachment_scanned"
    | "notification";
  ticket_id: string;
  version: number;
  position: number;
  time: string;
  data: Record<string, unknown>;
}

export interface TypingFrame {
  type: "typing";
  sub: string;
  ticket_id: string;
  user_id: string;
  role: Role;
  name: string;
  internal: boolean;
}

export interface PresenceFrame {
  type: "presence";
  user_id: string;
  name: string;
  availability: Availability;
  connected: boolean;
  state: Availability;
  position?: number;
}

export type ServerFrame =
  | EventFrame
  | TypingFrame
  | PresenceFrame
  | { type: "presence_snapshot"; agents: PresenceFrame[] }
  | { type: "ready"; user_id: string; role: Role; expires_at: number; position: number }
  | { type: "authenticated"; expires_at: number }
  | { type: "subscribed"; sub: string; stream: string; position: number; replayed: number }
  | { type: "error"; error: string; detail?: string; sub?: string; position?: number }
  | { type: "pong" };
