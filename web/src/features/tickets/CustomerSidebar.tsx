// The staff's sidebar on a ticket: who the customer is, their other tickets, and tickets
// like this one (GET /api/tickets/{id}/similar).

import type { UseQueryResult } from "@tanstack/react-query";
import { Link } from "react-router";
import { useSimilarTickets } from "../../api/customers";
import { flattenTickets, useTicketList } from "../../api/tickets";
import { ErrorState, Loading } from "../../components/States";
import { STATUS_LABELS, shortId } from "../../lib/format";
import type { Customer, Ticket } from "../../lib/types";

export function CustomerSidebar({
  ticket,
  customer,
}: {
  ticket: Ticket;
  customer: UseQueryResult<Customer>;
}) {
  const others = useTicketList(
    `customer-${ticket.customer_id}`,
    {
      customer: ticket.customer_id,
      sort: "-created_at",
    },
    10,
  );
  const similar = useSimilarTickets(ticket.id, true);
  const otherTickets = flattenTickets(others.data).filter((t) => t.id !== ticket.id);
  const c = customer.data;
  return (
    <aside className="customer-sidebar" aria-label="Customer" data-testid="customer-sidebar">
      <section className="card" aria-labelledby="customer-title">
        <h2 id="customer-title">Customer</h2>
        {customer.isPending ? (
          <Loading />
        ) : customer.isError ? (
          <ErrorState error={customer.error} onRetry={() => void customer.refetch()} />
        ) : (
          <dl>
            <dt>Name</dt>
            <dd data-testid="customer-name">{c?.name || "(no name)"}</dd>
            <dt>E-mail</dt>
            <dd>{c?.email && <a href={`mailto:${c.email}`}>{c.email}</a>}</dd>
            {c?.company && (
              <>
                <dt>Company</dt>
                <dd>{c.company}</dd>
              </>
            )}
            {c?.phone && (
              <>
                <dt>Phone</dt>
                <dd>{c.phone}</dd>
              </>
            )}
            <dt>Tickets</dt>
            <dd>
              {c?.open_tickets ?? 0} open of {c?.total_tickets ?? 0}
            </dd>
          </dl>
        )}
      </section>
      <section className="card" aria-labelledby="other-tickets-title">
        <h2 id="other-tickets-title">Other tickets</h2>
        {others.isPending ? (
          <Loading />
        ) : otherTickets.length === 0 ? (
          <p className="muted">No other tickets.</p>
        ) : (
          // Subjects repeat: the number and the status tell the tickets apart (both lists).
          <ul data-testid="other-tickets">
            {otherTickets.map((t) => (
              <li key={t.id}>
                <Link to={`/tickets/${t.id}`}>{t.subject}</Link>{" "}
                <span className="muted">#{shortId(t.id)}</span>{" "}
                <span className={`badge status-${t.status}`}>{STATUS_LABELS[t.status]}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section className="card" aria-labelledby="similar-title">
        <h2 id="similar-title">Similar tickets</h2>
        {similar.isPending ? (
          <Loading />
        ) : similar.isError ? (
          <p className="muted">Similar tickets are not available right now.</p>
        ) : similar.data.results.length === 0 ? (
          <p className="muted">None found.</p>
        ) : (
          <ul data-testid="similar-tickets">
            {similar.data.results.map((hit) => (
              <li key={hit.id}>
                <Link to={`/tickets/${hit.ticket_id}`}>{hit.title}</Link>{" "}
                <span className="muted">#{shortId(hit.ticket_id ?? hit.id)}</span>{" "}
                {hit.status && (
                  <span className={`badge status-${hit.status}`}>{STATUS_LABELS[hit.status]}</span>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>
    </aside>
  );
}
