// Customer satisfaction on the ticket (ADR 0047): the customer rates a resolved ticket from
// 1 to 5 with an optional comment; staff and the customer see the rating. Also the staff's
// list of the ticket's notification e-mails (the outbox) beside the thread.

import { useState, type FormEvent } from "react";
import { useRate, useTicketEmails } from "../../api/satisfaction";
import { RATING_LABELS, RatingPicker } from "../../components/RatingPicker";
import { Empty, ErrorState, Loading } from "../../components/States";
import { errorMessage } from "../../lib/api";
import { formatTime } from "../../lib/format";
import type { Ticket, TicketEmail } from "../../lib/types";

export function SatisfactionPanel({ ticket, isStaff }: { ticket: Ticket; isStaff: boolean }) {
  const done = ticket.status === "resolved" || ticket.status === "closed";
  const rated = ticket.satisfaction_rating ?? null;
  const [rating, setRating] = useState<number | null>(rated);
  const [comment, setComment] = useState(ticket.satisfaction_comment ?? "");
  const [editing, setEditing] = useState(false);
  const rate = useRate(ticket.id);
  if (!done && rated === null) return null;

  if (isStaff || (rated !== null && !editing)) {
    return (
      <section className="card satisfaction" aria-labelledby="csat-title">
        <h2 id="csat-title">Customer satisfaction</h2>
        {rated === null ? (
          <p className="muted" data-testid="csat-value">
            Not rated yet.
          </p>
        ) : (
          <>
            <p data-testid="csat-value">
              Rated <strong>{RATING_LABELS[rated]}</strong>
              {ticket.satisfaction_at && ` · ${formatTime(ticket.satisfaction_at)}`}
            </p>
            {ticket.satisfaction_comment && (
              <blockquote data-testid="csat-comment">{ticket.satisfaction_comment}</blockquote>
            )}
          </>
        )}
        {!isStaff && rated !== null && (
          <button type="button" className="secondary" onClick={() => setEditing(true)}>
            Change your rating
          </button>
        )}
      </section>
    );
  }

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (rating === null) return;
    rate.mutate({ rating, comment }, { onSuccess: () => setEditing(false) });
  }

  return (
    <section className="card satisfaction" aria-labelledby="csat-title">
      <h2 id="csat-title">How did we do?</h2>
      <form onSubmit={onSubmit} aria-labelledby="csat-title">
        <p id="csat-question">Rate the help you got on this ticket:</p>
        <RatingPicker value={rating} onChange={setRating} name="csat" labelledBy="csat-question" />
        <label htmlFor="csat-comment">Comment (optional)</label>
        <textarea
          id="csat-comment"
          value={comment}
          maxLength={2000}
          rows={2}
          onChange={(e) => setComment(e.target.value)}
        />
        {rate.isError && (
          <p className="field-error" role="alert">
            {errorMessage(rate.error)}
          </p>
        )}
        <button type="submit" disabled={rating === null || rate.isPending}>
          Send rating
        </button>
      </form>
    </section>
  );
}

const KIND_LABELS: Record<string, string> = {
  status_changed: "Status change",
  public_reply: "Reply",
  assigned: "Assignment",
  sla_reminder: "SLA reminder",
  sla_breached: "SLA breach",
};

function statusText(e: TicketEmail): string {
  if (e.status === "sent") return `Sent ${formatTime(e.sent_at)}`;
  if (e.status === "pending") return e.attempts ? `Retrying (${e.attempts} tries)` : "Pending";
  if (e.status === "failed") return `Failed: ${e.last_error}`;
  return `Not sent: ${e.last_error}`;
}

export function TicketEmails({ ticketId }: { ticketId: string }) {
  const emails = useTicketEmails(ticketId, true);
  return (
    <section className="card ticket-emails" aria-labelledby="emails-title">
      <h2 id="emails-title">E-mails</h2>
      {emails.isPending ? (
        <Loading label="Loading e-mails…" />
      ) : emails.isError ? (
        <ErrorState error={emails.error} onRetry={() => void emails.refetch()} />
      ) : emails.data.results.length === 0 ? (
        <Empty>No notification e-mails for this ticket yet.</Empty>
      ) : (
        <ul className="email-log" data-testid="ticket-emails">
          {emails.data.results.map((e) => (
            <li key={e.id} className={`email-${e.status}`}>
              <strong>{KIND_LABELS[e.kind] ?? e.kind}</strong> to{" "}
              {e.recipient_name ?? `user #${e.recipient_id}`}
              {e.recipient_email && <span className="muted"> &lt;{e.recipient_email}&gt;</span>}
              <br />
              <span className="muted">{formatTime(e.created_at)}</span> ·{" "}
              <span data-testid="email-status">{statusText(e)}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
