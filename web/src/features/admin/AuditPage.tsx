// Audit: every event of the store, newest first, filtered by actor, event type, ticket and
// time, with admin changes (before and after) among them; exported as CSV.

import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { downloadAuditCsv, useAdminAgents, useAudit, type AuditFilters } from "../../api/admin";
import { Empty, ErrorState, Loading } from "../../components/States";
import { errorMessage } from "../../lib/api";
import { formatTime } from "../../lib/format";
import { useToasts } from "../../lib/toast";
import type { AuditEvent } from "../../lib/types";

const EVENT_TYPES = [
  "TicketOpened", "MessagePosted", "StatusChanged", "AgentAssigned", "AgentUnassigned",
  "PriorityChanged", "TicketEdited", "TeamChanged", "SlaBreached", "AttachmentUploaded",
  "AgentRegistered", "AvailabilityChanged", "CapacityChanged", "SkillsChanged",
  "WorkingHoursChanged", "TeamCreated", "TeamRenamed", "TeamArchived", "TeamRestored",
  "MemberAdded", "MemberRemoved", "ChangeRecorded",
]; // prettier-ignore

const iso = (local: string) => (local ? new Date(local).toISOString() : undefined);

function Change({ event }: { event: AuditEvent }) {
  const data = event.data as Record<string, unknown>;
  if (event.type === "ChangeRecorded") {
    return (
      <div>
        <strong>{String(data.action)}</strong> on {String(data.subject)}
        <details>
          <summary>before / after</summary>
          <pre className="small">
            {JSON.stringify({ before: data.before, after: data.after }, null, 1)}
          </pre>
        </details>
      </div>
    );
  }
  return <code className="small">{JSON.stringify(data).slice(0, 160)}</code>;
}

/** Staff by name for the actor field (a customer's id can be typed, as the history shows it). */
function ActorChoices() {
  const staff = useAdminAgents(null);
  return (
    <datalist id="audit-actors" data-testid="audit-actors">
      {staff.data?.results.map((u) => (
        <option key={u.id} value={u.id}>
          {`${u.name} (${u.role})`}
        </option>
      ))}
    </datalist>
  );
}

export function AuditPage() {
  const [draft, setDraft] = useState({ actor: "", type: "", ticket: "", since: "", until: "" });
  const [filters, setFilters] = useState<AuditFilters>({});
  const [pages, setPages] = useState<(number | null)[]>([null]);
  const before = pages[pages.length - 1] ?? null;
  const audit = useAudit(filters, before);
  const { push } = useToasts();
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    setFilters({
      actor: draft.actor || undefined,
      type: draft.type || undefined,
      ticket: draft.ticket || undefined,
      since: iso(draft.since),
      until: iso(draft.until),
    });
    setPages([null]);
  }
  const field = (name: keyof typeof draft) => ({
    value: draft[name],
    onChange: (e: { target: { value: string } }) => setDraft({ ...draft, [name]: e.target.value }),
  });
  return (
    <>
      <h1>Audit</h1>
      <form className="card filters" onSubmit={onSubmit} aria-label="Audit filters">
        <label>
          Actor (user id)
          <input {...field("actor")} list="audit-actors" autoComplete="off" />
        </label>
        <ActorChoices />
        <label>
          Event type
          <select {...field("type")}>
            <option value="">Any</option>
            {EVENT_TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Ticket id
          <input {...field("ticket")} />
        </label>
        <label>
          From
          <input type="datetime-local" {...field("since")} />
        </label>
        <label>
          Until
          <input type="datetime-local" {...field("until")} />
        </label>
        <button type="submit">Filter</button>
        <button
          type="button"
          className="secondary"
          onClick={() =>
            void downloadAuditCsv(filters).catch((e) => push(errorMessage(e), "error"))
          }
        >
          Export CSV
        </button>
      </form>
      {audit.isPending ? (
        <Loading />
      ) : audit.error ? (
        <ErrorState error={audit.error} onRetry={() => void audit.refetch()} />
      ) : audit.data.results.length === 0 ? (
        <Empty>No events match.</Empty>
      ) : (
        <table className="admin-table" data-testid="audit">
          <thead>
            <tr>
              <th>When</th>
              <th>Event</th>
              <th>Who</th>
              <th>On</th>
              <th>What</th>
            </tr>
          </thead>
          <tbody>
            {audit.data.results.map((e) => (
              <tr key={e.position}>
                <td>{formatTime(e.time)}</td>
                <td>{e.type}</td>
                <td>
                  {e.actor.name ?? e.actor.id ?? "—"}{" "}
                  <span className="muted small">{e.actor.role}</span>
                </td>
                <td>
                  {e.aggregate === "ticket" ? (
                    <Link to={`/tickets/${e.aggregate_id}/history`}>ticket</Link>
                  ) : (
                    e.aggregate.replace("_", " ")
                  )}{" "}
                  <span className="muted small">v{e.version}</span>
                </td>
                <td>
                  <Change event={e} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="row">
        {pages.length > 1 && (
          <button type="button" className="secondary" onClick={() => setPages(pages.slice(0, -1))}>
            Newer
          </button>
        )}
        {audit.data?.next_before != null && (
          <button
            type="button"
            className="secondary"
            onClick={() => setPages([...pages, audit.data?.next_before ?? null])}
          >
            Older
          </button>
        )}
      </div>
    </>
  );
}
