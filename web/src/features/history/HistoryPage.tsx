// The ticket's event timeline, and the ticket "as of" any event in it or any moment.

import { useState } from "react";
import { Link, useParams } from "react-router";
import { useAsOf, useHistory } from "../../api/tickets";
import { PriorityBadge, StatusBadge } from "../../components/Badges";
import { MessageBubble } from "../../components/MessageBubble";
import { Empty, ErrorState, Loading } from "../../components/States";
import { useAuth } from "../../lib/auth";
import { STATUS_LABELS, formatTime, textOf } from "../../lib/format";
import type { HistoryEvent, Status } from "../../lib/types";

const label = (status: unknown) => STATUS_LABELS[status as Status] ?? String(status);

function describe(e: HistoryEvent): string {
  const d = e.data;
  switch (e.type) {
    case "TicketOpened":
      return `Opened “${String(d.subject)}” (${String(d.priority)})`;
    case "MessagePosted":
      return `${d.internal ? "Internal note" : "Message"}: ${textOf(d.body).slice(0, 120)}`;
    case "StatusChanged":
      return `Status ${label(d.from_status)} → ${label(d.to_status)}`;
    case "AgentAssigned":
      return d.agent_id
        ? `Assigned to ${textOf(d.agent_name, "an agent")}${
            d.policy && d.policy !== "manual" ? " automatically" : ""
          }`
        : "Unassigned";
    case "AgentUnassigned":
      return "Unassigned";
    case "DraftRequested":
      return "AI draft requested";
    case "DraftGenerated":
      return d.outcome === "ready"
        ? `AI draft ready (${textOf(d.source)}, ${textOf(d.model)}${d.cached ? ", cached" : ""}, ${Number(d.latency_ms)} ms)`
        : `AI draft ${textOf(d.outcome)}: ${textOf(d.reason).slice(0, 120)}`;
    case "SlaReminderDue":
      return `SLA reminder: ${d.target === "resolution" ? "resolution" : "first response"} due ${formatTime(textOf(d.deadline))}`;
    case "SlaBreached":
      return `SLA breached: ${d.target === "resolution" ? "resolution" : "first response"} was due ${formatTime(textOf(d.deadline))}`;
    case "SatisfactionRated":
      return `Rated ${Number(d.rating)} of 5${d.comment ? `: ${textOf(d.comment).slice(0, 120)}` : ""}`;
    case "ReplySentFromDraft":
      return `Reply sent from an AI draft (${Number(d.edit_distance)} characters changed)`;
    default:
      return e.type.replace(/([a-z])([A-Z])/g, "$1 $2");
  }
}

export function HistoryPage() {
  const { ticketId = "" } = useParams();
  const { me } = useAuth();
  const history = useHistory(ticketId);
  // A customer's history is numbered 1, 2, 3… by the server (their ticket's public versions,
  // no gap where an internal note was), and "as of" takes the same numbers: shown as given.
  const people = new Map<string, string>();
  for (const e of history.data?.events ?? []) {
    if (e.actor.id && e.actor.name) people.set(e.actor.id, e.actor.name);
    if (e.data.agent_id && e.data.agent_name)
      people.set(textOf(e.data.agent_id), textOf(e.data.agent_name));
  }
  const [at, setAt] = useState<string | null>(null);
  const [time, setTime] = useState("");
  const asOf = useAsOf(ticketId, at);

  return (
    <main id="main" className="history">
      <p>
        <Link to={`/tickets/${ticketId}`}>← Back to the ticket</Link>
      </p>
      <h1>History</h1>
      <div className="two-columns">
        <section className="card" aria-labelledby="timeline-title">
          <h2 id="timeline-title">Timeline</h2>
          {history.isPending ? (
            <Loading />
          ) : history.isError ? (
            <ErrorState error={history.error} onRetry={() => void history.refetch()} />
          ) : history.data.events.length === 0 ? (
            <Empty>No events.</Empty>
          ) : (
            <ol className="timeline" data-testid="timeline">
              {history.data.events.map((e) => (
                <li key={e.version} className={at === String(e.version) ? "current" : ""}>
                  <div>
                    <strong>v{e.version}</strong>{" "}
                    <time dateTime={e.time}>{formatTime(e.time)}</time>{" "}
                    <span className="muted">
                      by{" "}
                      {e.actor.id && e.actor.id === String(me?.id)
                        ? "you"
                        : (e.actor.name ?? (e.actor.role ? "a person" : "the system"))}
                    </span>
                  </div>
                  <div>{describe(e)}</div>
                  <button
                    type="button"
                    className="link-button"
                    onClick={() => setAt(String(e.version))}
                  >
                    View as of version {e.version}
                  </button>
                </li>
              ))}
            </ol>
          )}
          <form
            className="row"
            onSubmit={(ev) => {
              ev.preventDefault();
              if (time) setAt(new Date(time).toISOString());
            }}
          >
            <label>
              As of a moment
              <input
                type="datetime-local"
                step="1"
                value={time}
                onChange={(e) => setTime(e.target.value)}
              />
            </label>
            <button type="submit">Show</button>
          </form>
        </section>
        <section className="card" aria-labelledby="asof-title" data-testid="as-of">
          <h2 id="asof-title">
            {at
              ? `As of ${/^\d+$/.test(at) ? `version ${at}` : formatTime(at)}`
              : "Pick a point in time"}
          </h2>
          {at === null ? (
            <Empty>Choose an event in the timeline to see the ticket as it was then.</Empty>
          ) : asOf.isPending ? (
            <Loading />
          ) : asOf.isError ? (
            <ErrorState error={asOf.error} onRetry={() => void asOf.refetch()} />
          ) : (
            <div>
              <h3>{asOf.data.subject}</h3>
              <div className="ticket-card-badges">
                <StatusBadge status={asOf.data.status} />
                <PriorityBadge priority={asOf.data.priority} />
                <span className="muted">
                  {asOf.data.assigned_agent_id
                    ? `Assigned to ${people.get(asOf.data.assigned_agent_id) ?? "an agent"}`
                    : "Unassigned"}
                </span>
              </div>
              <div className="messages">
                {asOf.data.messages.map((m) => (
                  <MessageBubble key={m.id} message={m} mine={m.author_id === String(me?.id)} />
                ))}
              </div>
            </div>
          )}
        </section>
      </div>
    </main>
  );
}
