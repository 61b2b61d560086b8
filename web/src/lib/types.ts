// The names the app uses for the REST API's shapes. Every shape comes from openapi.gen.ts,
// generated from the server's OpenAPI schema (`make web-generate`; a test fails when it is
// stale): only the WebSocket frames (docs/realtime.md) and client-side types are written here.

import {
  PRIORITIES as LIFECYCLE_PRIORITIES,
  STATUSES as LIFECYCLE_STATUSES,
} from "./lifecycle.gen";
import type { components } from "./openapi.gen";

type Schemas = components["schemas"];

export type Role = Schemas["RoleEnum"];
export type Status = Schemas["StatusEnum"];
export type Priority = Schemas["PriorityEnum"];
export type Availability = Schemas["AvailabilityEnum"];

// In the domain's order (open first, closed last), from the lifecycle table.
export const STATUSES: readonly Status[] = LIFECYCLE_STATUSES;
export const PRIORITIES: readonly Priority[] = LIFECYCLE_PRIORITIES;

export type Me = Schemas["Me"];
export type TokenPair = Schemas["TokenPair"];
/** Sign-in and refresh answers to the web app: its refresh token is in the cookie. */
export type AccessToken = Omit<TokenPair, "refresh">;
export type Providers = Schemas["Providers"];
export type CommandResult = Schemas["CommandResult"];
export type Attachment = Schemas["MessageAttachment"];
/** An uploaded file with its scan state (`url`: a signed link, only once clean). */
export type TicketFile = Schemas["TicketFile"];
export type ScanStatus = Schemas["ScanStatusEnum"];
export type MessageResult = Schemas["MessageResult"];
export type UploadResult = Schemas["UploadResult"];
export type Ticket = Schemas["Ticket"];
export type TicketAsOf = Schemas["TicketAsOf"];
export type History = Schemas["History"];
export type HistoryEvent = Schemas["HistoryEvent"];
export type AgentWorkload = Schemas["AgentWorkload"];
export type TeamOption = Schemas["TeamOption"];
export type Customer = Schemas["Customer"];
export type TicketView = Schemas["TicketView"];
export type Notification = Schemas["Notification"];
export type NotificationPage = Schemas["PaginatedNotificationList"];
export type SearchHit = Schemas["SearchHit"];
export type SearchResponse = Schemas["SearchResponse"];
export type TicketList = Schemas["PaginatedTicketList"];
export type MessageList = Schemas["PaginatedMessageList"];
export type Draft = Schemas["Draft"];
export type Macro = Schemas["Macro"];
export type FilledMacro = Schemas["FilledMacro"];
export type SavedFilter = Schemas["SavedFilter"];
export type DraftRequested = Schemas["DraftRequested"];

type StoredMessage = Schemas["Message"];
/** A message of the thread as the app holds it: from the read model, or from a WebSocket frame
 * or the audit view (no `ticket_id`, no `position`), or a reply sent and not yet confirmed
 * (`pending`, client-side only). */
export type Message = Omit<StoredMessage, "ticket_id" | "position" | "files" | "body_html"> &
  Partial<Pick<StoredMessage, "ticket_id" | "position" | "files" | "body_html">> & {
    pending?: boolean;
  };

export interface TicketFilters {
  status?: Status[];
  priority?: Priority[];
  tags?: string[];
  created_from?: string;
  created_to?: string;
  agent?: string;
  customer?: string;
  sla_breached?: boolean;
  sort?: "created_at" | "-created_at" | "updated_at" | "-updated_at";
  /** A built-in view of the server's (GET /api/ticket-views). */
  view?: TicketView["id"];
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
    | "sla_breached"
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

/** "Ada is viewing" (staff only, not stored; docs/realtime.md). */
export interface ViewingFrame {
  type: "viewing";
  sub: string;
  ticket_id: string;
  user_id: string;
  name: string;
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

/** A frame of an AI draft's stream (stream `drafts`, live only, to the asking agent). */
export interface DraftFrame {
  type: "draft";
  sub: string;
  kind: "started" | "delta" | "done";
  ticket_id: string;
  draft_id: string;
  text?: string;
  source?: string;
  model?: string;
  status?: Draft["status"];
  reason?: string;
  cached?: boolean;
}

export type ServerFrame =
  | EventFrame
  | DraftFrame
  | TypingFrame
  | ViewingFrame
  | PresenceFrame
  | { type: "presence_snapshot"; agents: PresenceFrame[] }
  | { type: "ready"; user_id: string; role: Role; expires_at: number; position: number }
  | { type: "authenticated"; expires_at: number }
  | { type: "subscribed"; sub: string; stream: string; position?: number; replayed?: number }
  | { type: "error"; error: string; detail?: string; sub?: string; position?: number }
  | { type: "pong" };

// The admin console (src/api/admin.ts).
export type AdminAgent = Schemas["AdminAgent"];
export type AdminAgentPage = Schemas["AdminAgentPage"];
export type AdminTeam = Schemas["AdminTeam"];
export type AdminTeamPage = Schemas["AdminTeamPage"];
export type StaffUser = Schemas["StaffUser"];
export type StaffRole = Schemas["StaffRoleEnum"];
export type AuditEvent = Schemas["AuditEvent"];
export type AuditPage = Schemas["AuditPage"];
export type ProjectorStatus = Schemas["ProjectorStatus"];
export type Rebuild = Schemas["Rebuild"];
export type RebuildPage = Schemas["RebuildPage"];
export type RebuildStarted = Schemas["RebuildStarted"];
export type CustomerProfile = Schemas["CustomerProfile"];
export type CustomerPage = Schemas["PaginatedCustomerList"];
export type SlaSettings = Schemas["SlaSettings"];
export type CalendarSettings = Schemas["Calendar"];
export type AssignmentSettings = Schemas["AssignmentSettings"];
export type TicketIntake = Schemas["TicketIntake"];
export type RateLimits = Schemas["RateLimits"];
export type DraftSettings = Schemas["DraftSettings"];
export type EmailTemplate = Schemas["EmailTemplate"];
export type EmailPreview = Schemas["EmailPreview"];
export type OutboxList = Schemas["OutboxList"];
export type OutboxMessage = Schemas["OutboxMessage"];
export type TicketEmail = Schemas["TicketEmail"];
export type TicketEmailList = Schemas["TicketEmailList"];
export type RatingLink = Schemas["RatingLink"];
export type EmailPreferences = Schemas["EmailPreferences"];
