// Customers: the directory, and each customer's profile with their tickets.

import { useState } from "react";
import { Link, useParams } from "react-router";
import { cursorOf, useCustomer, useCustomers, useCustomerTickets } from "../../api/admin";
import { PriorityBadge, StatusBadge } from "../../components/Badges";
import { Empty, ErrorState, Loading } from "../../components/States";
import { formatTime } from "../../lib/format";

export function CustomersPage() {
  const [cursor, setCursor] = useState<string | null>(null);
  const customers = useCustomers(cursor);
  if (customers.isPending) return <Loading />;
  if (customers.error)
    return <ErrorState error={customers.error} onRetry={() => void customers.refetch()} />;
  return (
    <>
      <h1>Customers</h1>
      {customers.data.results.length === 0 ? (
        <Empty>No customers yet.</Empty>
      ) : (
        <table className="admin-table" data-testid="customers">
          <thead>
            <tr>
              <th>Customer</th>
              <th>Company</th>
              <th>Open</th>
              <th>Tickets</th>
            </tr>
          </thead>
          <tbody>
            {customers.data.results.map((c) => (
              <tr key={c.id}>
                <td>
                  <Link to={`/admin/customers/${c.id}`}>{c.name || c.email}</Link>
                  <div className="small muted">{c.email}</div>
                </td>
                <td>{c.company}</td>
                <td>{c.open_tickets}</td>
                <td>{c.total_tickets}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="row">
        {customers.data.previous && (
          <button
            type="button"
            className="secondary"
            onClick={() => setCursor(cursorOf(customers.data.previous))}
          >
            Previous
          </button>
        )}
        {customers.data.next && (
          <button
            type="button"
            className="secondary"
            onClick={() => setCursor(cursorOf(customers.data.next))}
          >
            Next
          </button>
        )}
      </div>
    </>
  );
}

export function CustomerPage() {
  const { customerId = "" } = useParams();
  const customer = useCustomer(customerId);
  const tickets = useCustomerTickets(customerId);
  if (customer.isPending) return <Loading />;
  if (customer.error) return <ErrorState error={customer.error} />;
  const c = customer.data;
  return (
    <>
      <p>
        <Link to="/admin/customers">← Customers</Link>
      </p>
      <h1>{c.name}</h1>
      <dl className="card profile">
        <dt>E-mail</dt>
        <dd>{c.email}</dd>
        <dt>Company</dt>
        <dd>{c.company || "—"}</dd>
        <dt>Phone</dt>
        <dd>{c.phone || "—"}</dd>
        <dt>Signed in with</dt>
        <dd>{c.social_provider || "—"}</dd>
        <dt>Customer since</dt>
        <dd>{formatTime(c.date_joined)}</dd>
        <dt>Last seen</dt>
        <dd>{c.last_seen ? formatTime(c.last_seen) : "—"}</dd>
        <dt>Tickets</dt>
        <dd>
          {c.open_tickets} open of {c.total_tickets}
        </dd>
      </dl>
      <h2>Tickets</h2>
      {tickets.isPending ? (
        <Loading />
      ) : tickets.error ? (
        <ErrorState error={tickets.error} />
      ) : tickets.data.results.length === 0 ? (
        <Empty>No tickets.</Empty>
      ) : (
        <ul className="customer-tickets" data-testid="customer-tickets">
          {tickets.data.results.map((t) => (
            <li key={t.id} className="row">
              <Link to={`/tickets/${t.id}`}>{t.subject}</Link>
              <StatusBadge status={t.status} />
              <PriorityBadge priority={t.priority} />
              <span className="muted small">{formatTime(t.created_at)}</span>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
