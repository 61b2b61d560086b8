// One ticket: header and controls, the thread (live), typing indicators and the reply box
// with stale-reply protection (If-Match: the version on screen; 409 shows what changed).

import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { agentState, useAgents, usePresence, useTeams } from "../../api/agents";
import { useUploads, type Upload } from "../../api/attachments";
import { useCustomer } from "../../api/customers";
import {
  fetchMessages,
  keys,
  mergeMessage,
  mergeThread,
  useAssign,
  useChangeStatus,
  useEditTicket,
  useSetTeam,
  useMessages,
  usePostMessage,
  useTicket,
} from "../../api/tickets";
import { AttachmentList } from "../../components/AttachmentList";
import { PriorityBadge, StatusBadge } from "../../components/Badges";
import { SlaBadge } from "../../components/SlaBadge";
import { FileDrop } from "../../components/FileDrop";
import { MessageBubble } from "../../components/MessageBubble";
import { DraftPanel } from "./DraftPanel";
import { MACRO_MENU_ID, MacroPicker, describeChanges, runMacroChanges } from "./MacroPicker";
import { Empty, ErrorState, Loading } from "../../components/States";
import { ApiError, errorMessage } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { loadDraft, saveDraft } from "../../lib/drafts";
import { PRIORITY_LABELS, STATUS_LABELS, formatTime, shortId, textOf } from "../../lib/format";
import { useRealtime, useStream } from "../../lib/realtime-react";
import { useToasts } from "../../lib/toast";
import { nextStatuses } from "../../lib/lifecycle";
import { CustomerSidebar } from "./CustomerSidebar";
import { SatisfactionPanel, TicketEmails } from "./Satisfaction";
import { useTicketShortcuts } from "./shortcuts";
import {
  PRIORITIES,
  type EventFrame,
  type FilledMacro,
  type Message,
  type Priority,
  type Status,
  type Ticket,
  type TypingFrame,
} from "../../lib/types";

const TYPING_SHOW_MS = 4000;
const TYPING_SEND_MS = 1500;
const VIEWING_REPEAT_MS = 10_000; // "I am viewing", again while the page is open (staff)
const VIEWING_SHOW_MS = 25_000; // shown until this long after another's last signal

export function TicketDetailPage() {
  const { ticketId = "" } = useParams();
  return <TicketDetail key={ticketId} ticketId={ticketId} />;
}

export function TicketDetail({ ticketId, upload }: { ticketId: string; upload?: Upload }) {
  const { me, isStaff } = useAuth();
  const client = useQueryClient();
  const toasts = useToasts();
  const realtime = useRealtime();
  const ticket = useTicket(ticketId);
  const messages = useMessages(ticketId, ticket.isSuccess);
  const agents = useAgents(isStaff);
  const [typing, setTyping] = useState<
    Record<string, { name: string; internal: boolean; at: number }>
  >({});
  const [viewers, setViewers] = useState<Record<string, { name: string; at: number }>>({});
  const [unseen, setUnseen] = useState(0);
  const [announce, setAnnounce] = useState("");
  const [inserted, setInserted] = useState<Inserted | null>(null);
  const threadEnd = useRef<HTMLDivElement>(null);

  const agentNames = new Map(agents.data?.map((a) => [a.user_id, a.name]));
  const customer = useCustomer(ticket.data?.customer_id, isStaff);
  const customerName = customer.data?.name || customer.data?.email || "Customer";
  useTicketShortcuts(isStaff);

  function onEvent(frame: EventFrame) {
    const d = frame.data;
    client.setQueryData<Ticket>(keys.ticket(ticketId), (t) => {
      if (!t) return t;
      const next: Ticket = {
        ...t,
        version: Math.max(t.version, frame.version),
        updated_at: frame.time,
      };
      if (frame.kind === "status_changed") next.status = d.to_status as Status;
      if (frame.kind === "assignment_changed")
        next.assigned_agent_id = (d.agent_id as string | null) ?? null;
      if (frame.kind === "priority_changed") next.priority = d.to_priority as Ticket["priority"];
      if (frame.kind === "ticket_edited") {
        next.subject = textOf(d.subject, t.subject);
        next.description = textOf(d.description, t.description);
        if (Array.isArray(d.tags)) next.tags = d.tags as string[];
      }
      return next;
    });
    if (frame.kind === "attachment_uploaded" || frame.kind === "attachment_scanned") {
      // A file arrived or its scan finished: fetch the lists again (they carry its link).
      void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
      void client.invalidateQueries({ queryKey: keys.messages(ticketId) });
    }
    if (frame.kind === "message_posted") {
      const message: Message = {
        id: String(d.message_id),
        version: frame.version,
        author_id: String(d.author_id),
        author_role: d.author_role as Message["author_role"],
        body: String(d.body),
        internal: Boolean(d.internal),
        attachments: (d.attachments as Message["attachments"]) ?? [],
        posted_at: String(d.posted_at),
        position: frame.position,
      };
      client.setQueryData<Message[]>(keys.messages(ticketId), (list) =>
        mergeMessage(list, message),
      );
      // A frame carries the source text only: the server's sanitised HTML comes with the
      // thread, fetched again and merged (never dropping what the frame brought).
      void fetchMessages(ticketId)
        .then((fetched) =>
          client.setQueryData<Message[]>(keys.messages(ticketId), (list) =>
            mergeThread(list, fetched),
          ),
        )
        .catch(() => undefined); // the text stays; the next read brings the HTML
      if (message.author_id !== String(me?.id)) {
        setUnseen((n) => n + 1);
        setAnnounce(
          `New ${message.internal ? "internal note" : "message"}: ${message.body.slice(0, 80)}`,
        );
        setTyping((all) => {
          const rest = { ...all };
          delete rest[message.author_id];
          return rest;
        });
      }
    } else if (frame.kind === "status_changed") {
      setAnnounce(
        `Status changed to ${STATUS_LABELS[frame.data.to_status as Status] ?? frame.data.to_status}`,
      );
    }
  }

  function onTyping(frame: TypingFrame) {
    setTyping((all) => ({
      ...all,
      [frame.user_id]: { name: frame.name, internal: frame.internal, at: Date.now() },
    }));
  }

  useStream(
    "ticket",
    {
      onEvent,
      onTyping,
      onViewing: (frame) =>
        setViewers((all) => ({ ...all, [frame.user_id]: { name: frame.name, at: Date.now() } })),
      onResync: () => void client.invalidateQueries({ queryKey: keys.messages(ticketId) }),
    },
    { ticketId, afterVersion: ticket.data?.version, enabled: ticket.isSuccess },
  );

  // Collision detection: staff say they have this ticket open, again every few seconds.
  const subscribed = ticket.isSuccess;
  useEffect(() => {
    if (!isStaff || !realtime || !subscribed) return;
    realtime.viewing(ticketId);
    const timer = setInterval(() => realtime.viewing(ticketId), VIEWING_REPEAT_MS);
    return () => clearInterval(timer);
  }, [isStaff, realtime, subscribed, ticketId]);
  useEffect(() => {
    if (!Object.keys(viewers).length) return;
    const timer = setInterval(() => {
      setViewers((all) => {
        const now = Date.now();
        const kept = Object.fromEntries(
          Object.entries(all).filter(([, v]) => now - v.at < VIEWING_SHOW_MS),
        );
        return Object.keys(kept).length === Object.keys(all).length ? all : kept;
      });
    }, 1000);
    return () => clearInterval(timer);
  }, [viewers]);

  // Forget typing signals a few seconds after the last one.
  useEffect(() => {
    if (!Object.keys(typing).length) return;
    const timer = setInterval(() => {
      setTyping((all) => {
        const now = Date.now();
        const kept = Object.fromEntries(
          Object.entries(all).filter(([, t]) => now - t.at < TYPING_SHOW_MS),
        );
        return Object.keys(kept).length === Object.keys(all).length ? all : kept;
      });
    }, 500);
    return () => clearInterval(timer);
  }, [typing]);

  if (ticket.isPending) return <Loading label="Loading ticket…" />;
  if (ticket.isError)
    return (
      <main id="main">
        <ErrorState error={ticket.error} onRetry={() => void ticket.refetch()} />
        <Link to="/">Back to your tickets</Link>
      </main>
    );
  const t = ticket.data;
  const thread = messages.data ?? [];
  const seenVersion = Math.max(
    t.version,
    ...thread.filter((m) => !m.pending).map((m) => m.version),
  );
  const viewerNames = Object.values(viewers).map((v) => v.name);
  const typingNames = Object.values(typing).map(
    (x) => x.name + (x.internal ? " (internal note)" : ""),
  );

  function authorName(m: Message): string {
    if (m.author_id === String(me?.id)) return me?.name || "You";
    if (m.author_role === "customer") return isStaff ? customerName : "Customer";
    return agentNames.get(m.author_id) ?? "Support agent";
  }

  return (
    <main id="main" className={`ticket-detail${isStaff ? " ticket-layout" : ""}`}>
      <div className="ticket-main">
        <header className="ticket-header card">
          <div>
            <h1 data-testid="ticket-subject">{t.subject}</h1>
            <p className="muted">
              #{shortId(t.id)} · opened {formatTime(t.created_at)}
              {isStaff && ` · from ${customerName}`}
            </p>
            <div className="ticket-card-badges">
              <StatusBadge status={t.status} />
              <PriorityBadge priority={t.priority} />
              {isStaff && <SlaBadge ticket={t} />}
              <span className="muted" data-testid="assignee">
                {assigneeText(
                  t,
                  isStaff,
                  me && !agentNames.has(String(me.id))
                    ? new Map([...agentNames, [String(me.id), me.name || "you"]])
                    : agentNames,
                )}
              </span>
            </div>
            {t.description && <p className="description">{t.description}</p>}
            <AttachmentList
              label="Ticket attachments"
              attachments={(t.attachments ?? []).filter((a) => !a.message_id)}
            />
          </div>
          <nav aria-label="Ticket views">
            <Link to={`/tickets/${t.id}/history`}>History</Link>
          </nav>
        </header>

        <TicketControls ticket={t} />
        <SatisfactionPanel key={`${t.satisfaction_rating}`} ticket={t} isStaff={isStaff} />

        <section className="card thread" aria-labelledby="thread-title">
          <h2 id="thread-title">Conversation</h2>
          <div className="sr-only" aria-live="polite" data-testid="live-announcer">
            {announce}
          </div>
          {messages.isPending ? (
            <Loading label="Loading messages…" />
          ) : messages.isError ? (
            <ErrorState error={messages.error} onRetry={() => void messages.refetch()} />
          ) : thread.length === 0 ? (
            <Empty>No messages yet.</Empty>
          ) : (
            <div className="messages">
              {thread.map((m) => (
                <MessageBubble
                  key={m.id}
                  message={m}
                  mine={m.author_id === String(me?.id)}
                  authorName={authorName(m)}
                />
              ))}
            </div>
          )}
          <div ref={threadEnd} />
          {unseen > 0 && (
            <button
              type="button"
              className="new-messages"
              onClick={() => {
                threadEnd.current?.scrollIntoView({ behavior: "smooth" });
                setUnseen(0);
              }}
            >
              {unseen} new message{unseen === 1 ? "" : "s"}
            </button>
          )}
          <p className="typing" aria-live="polite" data-testid="typing-indicator">
            {typingNames.length > 0 &&
              `${typingNames.join(", ")} ${typingNames.length === 1 ? "is" : "are"} typing…`}
          </p>
          {isStaff && (
            <p className="typing" data-testid="viewing-indicator">
              {viewerNames.length > 0 &&
                `${viewerNames.join(", ")} ${viewerNames.length === 1 ? "is" : "are"} viewing`}
            </p>
          )}
          {t.status !== "closed" && isStaff && (
            <DraftPanel
              ticketId={t.id}
              onInsert={(text, draftId) =>
                setInserted((n) => ({ text, draftId, n: (n?.n ?? 0) + 1 }))
              }
            />
          )}
          {t.status === "closed" ? (
            <p className="muted">This ticket is closed.</p>
          ) : (
            <ReplyBox
              upload={upload}
              inserted={inserted}
              ticketId={t.id}
              seenVersion={seenVersion}
              onTyping={(internal) => realtime?.typing(t.id, internal)}
              onSent={() => setUnseen(0)}
              onError={(text) => toasts.push(text, "error")}
            />
          )}
        </section>
      </div>
      {isStaff && (
        <div className="ticket-side">
          <CustomerSidebar ticket={t} customer={customer} />
          <TicketEmails ticketId={t.id} />
        </div>
      )}
    </main>
  );
}

function assigneeText(t: Ticket, isStaff: boolean, names: Map<string, string>): string {
  const agent = t.assigned_agent_id
    ? (names.get(t.assigned_agent_id) ?? (isStaff ? "an agent" : "a support agent"))
    : null;
  if (t.status === "closed") return agent && isStaff ? `Closed · was with ${agent}` : "Closed";
  if (t.status === "resolved") return agent && isStaff ? `Resolved · ${agent}` : "Resolved";
  if (!agent) return "Not assigned yet";
  return isStaff ? `Agent: ${agent}` : "An agent is on it";
}

/** Status, assignee, priority and tags. Nothing changes on a mere selection (a stray arrow
 * key while tabbing): the user picks, then applies; each change is announced with Undo. */
function TicketControls({ ticket }: { ticket: Ticket }) {
  const { me, isStaff } = useAuth();
  const toasts = useToasts();
  const agents = useAgents(isStaff);
  const presence = usePresence(isStaff);
  const status = useChangeStatus(ticket.id);
  const assign = useAssign(ticket.id);
  const edit = useEditTicket(ticket.id);
  const [nextStatus, setNextStatus] = useState<Status | null>(null);
  const [nextAgent, setNextAgent] = useState<string | null>(null);
  const closed = ticket.status === "closed";
  const agentLabel = (id: string | null) =>
    id === null
      ? "Unassigned"
      : (agents.data?.find((a) => a.user_id === id)?.name ??
        (id === String(me?.id) ? (me?.name ?? "you") : "an agent"));

  function changeStatus(next: Status, undoable = true) {
    const previous = ticket.status;
    setNextStatus(null);
    status.mutate(next, {
      onSuccess: () =>
        toasts.push(`Status changed to ${STATUS_LABELS[next]}`, "success", undefined, {
          key: `status:${ticket.id}`,
          action: undoable
            ? { label: "Undo", run: () => changeStatus(previous, false) }
            : undefined,
        }),
      onError: (e) => toasts.push(`Status not changed: ${errorMessage(e)}`, "error"),
    });
  }
  function assignTo(agentId: string | null, undoable = true) {
    const previous = ticket.assigned_agent_id;
    setNextAgent(null);
    assign.mutate(agentId === null ? null : Number(agentId), {
      onSuccess: () =>
        toasts.push(
          agentId === null ? "Unassigned" : `Assigned to ${agentLabel(agentId)}`,
          "success",
          undefined,
          {
            key: `assign:${ticket.id}`,
            action: undoable ? { label: "Undo", run: () => assignTo(previous, false) } : undefined,
          },
        ),
      onError: (e) => toasts.push(`Not assigned: ${errorMessage(e)}`, "error"),
    });
  }
  function changePriority(priority: Priority) {
    edit.mutate(
      { priority },
      {
        onSuccess: () =>
          toasts.push(`Priority set to ${PRIORITY_LABELS[priority]}`, "success", undefined, {
            key: `priority:${ticket.id}`,
          }),
        onError: (e) => toasts.push(`Priority not changed: ${errorMessage(e)}`, "error"),
      },
    );
  }
  function changeTags(tags: string[]) {
    edit.mutate(
      { tags },
      { onError: (e) => toasts.push(`Tags not changed: ${errorMessage(e)}`, "error") },
    );
  }

  const moves = nextStatuses(ticket, me?.role ?? "customer");
  const statusValue = nextStatus ?? ticket.status;
  const agentValue = nextAgent ?? ticket.assigned_agent_id ?? "";
  return (
    <section className="card controls" aria-label="Ticket actions">
      {moves.length > 0 && (
        <div className="pending-change">
          <label>
            Status
            <select
              value={statusValue}
              onChange={(e) =>
                setNextStatus(e.target.value === ticket.status ? null : (e.target.value as Status))
              }
              disabled={status.isPending}
              data-testid="status-select"
            >
              {[ticket.status, ...moves].map((s) => (
                <option key={s} value={s}>
                  {s === ticket.status ? `${STATUS_LABELS[s]} (current)` : `→ ${STATUS_LABELS[s]}`}
                </option>
              ))}
            </select>
          </label>
          {nextStatus && (
            <>
              <button type="button" onClick={() => changeStatus(nextStatus)}>
                Apply status
              </button>
              <button type="button" className="secondary" onClick={() => setNextStatus(null)}>
                Cancel
              </button>
            </>
          )}
        </div>
      )}
      {!isStaff && ticket.status !== "resolved" && ticket.status !== "closed" && (
        <button type="button" className="secondary" onClick={() => changeStatus("resolved")}>
          Mark resolved
        </button>
      )}
      {isStaff && me && closed && (
        <p className="muted" data-testid="closed-note">
          Closed
          {ticket.assigned_agent_id ? ` · handled by ${agentLabel(ticket.assigned_agent_id)}` : ""}.
          Closed tickets cannot be reassigned.
        </p>
      )}
      {isStaff && me && !closed && (
        <>
          <div className="pending-change">
            <label>
              Assigned agent
              <select
                value={agentValue}
                disabled={assign.isPending}
                onChange={(e) =>
                  setNextAgent(
                    e.target.value === (ticket.assigned_agent_id ?? "") ? null : e.target.value,
                  )
                }
                data-testid="assign-select"
              >
                <option value="">Unassigned</option>
                {agents.data?.map((a) => (
                  <option key={a.user_id} value={a.user_id}>
                    {a.name} ({agentState(a, presence)}, {a.open_tickets} open)
                  </option>
                ))}
                {ticket.assigned_agent_id &&
                  !agents.data?.some((a) => a.user_id === ticket.assigned_agent_id) && (
                    <option value={ticket.assigned_agent_id}>
                      {agentLabel(ticket.assigned_agent_id)}
                    </option>
                  )}
              </select>
            </label>
            {nextAgent !== null && (
              <>
                <button type="button" onClick={() => assignTo(nextAgent || null)}>
                  Apply assignment
                </button>
                <button type="button" className="secondary" onClick={() => setNextAgent(null)}>
                  Cancel
                </button>
              </>
            )}
          </div>
          {ticket.assigned_agent_id !== String(me.id) && (
            <button
              type="button"
              onClick={() => assignTo(String(me.id))}
              disabled={assign.isPending}
              data-shortcut="assign-to-me"
            >
              Assign to me
            </button>
          )}
          <label>
            Priority
            <select
              value={ticket.priority}
              disabled={edit.isPending}
              onChange={(e) => changePriority(e.target.value as Priority)}
              data-testid="priority-select"
            >
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {PRIORITY_LABELS[p]}
                </option>
              ))}
            </select>
          </label>
          <TagEditor tags={ticket.tags ?? []} onChange={changeTags} disabled={edit.isPending} />
          <TeamPicker ticket={ticket} />
        </>
      )}
    </section>
  );
}

/** The ticket's team: pick, then apply (like status and assignee); announced with Undo. */
function TeamPicker({ ticket }: { ticket: Ticket }) {
  const toasts = useToasts();
  const teams = useTeams(true);
  const setTeam = useSetTeam(ticket.id);
  const current = ticket.team_id ?? null;
  const [next, setNext] = useState<string | null>(null);
  const name = (id: string | null) =>
    id === null ? "No team" : (teams.data?.find((t) => t.id === id)?.name ?? "an archived team");
  function route(teamId: string | null, undoable = true) {
    setNext(null);
    setTeam.mutate(teamId, {
      onSuccess: () =>
        toasts.push(
          teamId === null ? "Team removed" : `Routed to ${name(teamId)}`,
          "success",
          undefined,
          {
            key: `team:${ticket.id}`,
            action: undoable ? { label: "Undo", run: () => route(current, false) } : undefined,
          },
        ),
      onError: (e) => toasts.push(`Team not changed: ${errorMessage(e)}`, "error"),
    });
  }
  const value = next ?? current ?? "";
  return (
    <div className="pending-change">
      <label>
        Team
        <select
          value={value}
          disabled={setTeam.isPending}
          onChange={(e) => setNext(e.target.value === (current ?? "") ? null : e.target.value)}
          data-testid="team-select"
        >
          <option value="">No team</option>
          {teams.data?.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
          {current && !teams.data?.some((t) => t.id === current) && (
            <option value={current}>{name(current)}</option>
          )}
        </select>
      </label>
      {next !== null && (
        <>
          <button type="button" onClick={() => route(next || null)}>
            Apply team
          </button>
          <button type="button" className="secondary" onClick={() => setNext(null)}>
            Cancel
          </button>
        </>
      )}
    </div>
  );
}

/** A draft put into the reply box (``n`` counts insertions, so the same text inserts again). */
interface Inserted {
  text: string;
  draftId: string;
  n: number;
}

function TagEditor({
  tags,
  onChange,
  disabled,
}: {
  tags: string[];
  onChange: (tags: string[]) => void;
  disabled: boolean;
}) {
  const [text, setText] = useState("");
  function add(e: FormEvent) {
    e.preventDefault();
    const tag = text.trim().toLowerCase();
    if (!tag || tags.includes(tag)) return;
    setText("");
    onChange([...tags, tag]);
  }
  return (
    <form className="pending-change" onSubmit={add} aria-label="Tags">
      <ul className="tag-list" aria-label="Tags on this ticket" data-testid="tags">
        {tags.map((tag) => (
          <li key={tag} className="badge">
            {tag}{" "}
            <button
              type="button"
              className="link-button"
              aria-label={`Remove tag ${tag}`}
              disabled={disabled}
              onClick={() => onChange(tags.filter((t) => t !== tag))}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
      <label>
        <span className="sr-only">New tag</span>
        <input
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="Add a tag"
          maxLength={50}
          size={10}
        />
      </label>
      <button type="submit" className="secondary" disabled={disabled || !text.trim()}>
        Add tag
      </button>
    </form>
  );
}

function ReplyBox({
  upload,
  inserted,
  ticketId,
  seenVersion,
  onTyping,
  onSent,
  onError,
}: {
  upload?: Upload;
  inserted?: Inserted | null;
  ticketId: string;
  seenVersion: number;
  onTyping: (internal: boolean) => void;
  onSent: () => void;
  onError: (text: string) => void;
}) {
  const { me, isStaff } = useAuth();
  const post = usePostMessage(ticketId, { id: me?.id ?? 0, role: me?.role ?? "customer" });
  const [body, setBodyState] = useState(() => loadDraft(me?.id ?? 0, ticketId));
  const setBody = (value: string) => {
    setBodyState(value);
    saveDraft(me?.id ?? 0, ticketId, value);
  };
  const [internal, setInternal] = useState(false);
  const [stale, setStale] = useState<number | null>(null);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [draftId, setDraftId] = useState<string | null>(null);
  const [insertedSeen, setInsertedSeen] = useState(0);
  const [macro, setMacro] = useState<FilledMacro | null>(null);
  const [macroReport, setMacroReport] = useState("");
  if (inserted && inserted.n !== insertedSeen) {
    // A draft was inserted: it becomes the reply's text, a public reply that names it.
    setInsertedSeen(inserted.n);
    setBody(inserted.text);
    setDraftId(inserted.draftId);
    setInternal(false);
  }
  const lastTyping = useRef(0);
  const uploads = useUploads(upload);
  const client = useQueryClient();

  function onChange(value: string) {
    setBody(value);
    const now = Date.now();
    if (value && now - lastTyping.current > TYPING_SEND_MS) {
      lastTyping.current = now;
      onTyping(internal);
    }
  }

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (!body.trim()) {
      setFieldError("Write a message first.");
      return;
    }
    setFieldError(null);
    const text = body;
    setBody("");
    const files = uploads.items;
    try {
      const result = await post.mutateAsync({
        body: text,
        internal,
        ifMatch: seenVersion,
        draftId: draftId ?? undefined,
      });
      setDraftId(null);
      setStale(null);
      onSent();
      if (macro) {
        // The macro's changes, each through the ticket's own command (the server decides).
        const applied = macro;
        setMacro(null);
        const ticket = client.getQueryData<Ticket>(keys.ticket(ticketId));
        const { done, refused } = await runMacroChanges(ticketId, applied, ticket);
        setMacroReport(
          `Macro “${applied.name}”: ${done.length} of ${done.length + refused.length} changes done` +
            (refused.length ? `; refused: ${refused.join("; ")}` : "."),
        );
        void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
        void client.invalidateQueries({ queryKey: ["tickets"] });
      }
      if (files.length && result.message_id) {
        const done = await uploads.run(ticketId, files, { messageId: result.message_id });
        void client.invalidateQueries({ queryKey: keys.messages(ticketId) });
        void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
        if (!done.some((item) => item.state === "failed")) uploads.clear();
        else onError("Some files were not attached; see below.");
      }
    } catch (error) {
      setBody(text); // keep the draft
      if (error instanceof ApiError && error.code === "stale_reply") {
        setStale(((error.body.messages as unknown[]) ?? []).length);
      } else if (error instanceof ApiError && error.status === 400) {
        setFieldError(errorMessage(error));
      } else onError(`Not sent: ${errorMessage(error)}`);
    }
  }

  return (
    <form
      className={`reply-box${internal ? " reply-internal" : ""}`}
      onSubmit={(e) => void onSubmit(e)}
      noValidate
    >
      {stale !== null && (
        <div className="stale-warning" role="alert" data-testid="stale-warning">
          <strong>The ticket changed while you were writing.</strong> {stale} newer message
          {stale === 1 ? " was" : "s were"} added above. Read {stale === 1 ? "it" : "them"}, then
          send again.
        </div>
      )}
      {isStaff && (
        <MacroPicker
          ticketId={ticketId}
          onError={onError}
          onApply={(filled) => {
            setBody(filled.body);
            setMacro(filled);
            setMacroReport("");
            document.getElementById("reply-body")?.focus();
          }}
        />
      )}
      <label htmlFor="reply-body">{internal ? "Internal note (staff only)" : "Reply"}</label>
      <textarea
        id="reply-body"
        rows={3}
        value={body}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={(e) => {
          // Ctrl/⌘+Enter sends, like every help desk.
          if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            e.currentTarget.form?.requestSubmit();
          }
          // Alt+M: the macro menu (staff).
          if (isStaff && e.altKey && e.code === "KeyM") {
            e.preventDefault();
            document.getElementById(MACRO_MENU_ID)?.focus();
          }
        }}
        aria-keyshortcuts={isStaff ? "Control+Enter Meta+Enter Alt+M" : "Control+Enter Meta+Enter"}
        aria-invalid={fieldError ? true : undefined}
        aria-describedby={fieldError ? "reply-error" : undefined}
      />
      {fieldError && (
        <p id="reply-error" className="field-error">
          {fieldError}
        </p>
      )}
      {macro && describeChanges(macro).length > 0 && (
        <p className="macro-changes" data-testid="macro-changes">
          On send, macro “{macro.name}” will ask to {describeChanges(macro).join(", ")}.{" "}
          <button type="button" className="link-button" onClick={() => setMacro(null)}>
            Keep the text only
          </button>
        </p>
      )}
      <p role="status" className="muted" data-testid="macro-report">
        {macroReport}
      </p>
      <FileDrop
        label="Attach files"
        items={uploads.items}
        onAdd={uploads.add}
        onRemove={uploads.remove}
        disabled={post.isPending}
      />
      <div className="row">
        {isStaff && (
          <label className="checkbox">
            <input
              type="checkbox"
              data-shortcut="internal-note"
              checked={internal}
              onChange={(e) => setInternal(e.target.checked)}
            />{" "}
            Internal note
          </label>
        )}
        <button type="submit" disabled={post.isPending}>
          {internal ? "Add note" : "Send reply"}
        </button>
      </div>
    </form>
  );
}
