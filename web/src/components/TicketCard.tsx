import { Link } from "react-router";
import { formatTime, shortId } from "../lib/format";
import type { Ticket } from "../lib/types";
import { PriorityBadge, StatusBadge } from "./Badges";
import { SlaBadge } from "./SlaBadge";

export function TicketCard({
  ticket,
  agentName,
  time = "updated",
}: {
  ticket: Ticket;
  agentName?: string;
  /** Which time the row shows: the one the list is sorted by. */
  time?: "created" | "updated";
}) {
  return (
    <div className="ticket-card" data-testid="ticket-card" data-ticket-id={ticket.id}>
      <div className="ticket-card-main">
        <Link to={`/tickets/${ticket.id}`} className="ticket-subject">
          {ticket.subject}
        </Link>
        <div className="ticket-meta">
          <span className="muted">#{shortId(ticket.id)}</span>
          <span className="muted">
            {time === "created" ? "opened " : "updated "}
            {formatTime(time === "created" ? ticket.created_at : ticket.updated_at)}
          </span>
          {agentName && <span className="muted">· {agentName}</span>}
          {ticket.message_count !== undefined && (
            <span className="muted">
              · {ticket.message_count} message{ticket.message_count === 1 ? "" : "s"}
            </span>
          )}
        </div>
      </div>
      <div className="ticket-card-badges">
        <StatusBadge status={ticket.status} />
        <PriorityBadge priority={ticket.priority} />
        <SlaBadge ticket={ticket} />
      </div>
    </div>
  );
}
