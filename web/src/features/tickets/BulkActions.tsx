// Bulk actions on the staff's ticket list: assign the selected tickets to me, move their
// status, or add a tag. Each ticket is one command (the server decides each move); the bar
// says how many were done and how many refused.

import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { command, errorMessage } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { STATUS_LABELS } from "../../lib/format";
import { STATUSES, type Status, type Ticket } from "../../lib/types";

export function BulkActions({
  tickets,
  selected,
  onDone,
}: {
  tickets: Ticket[];
  selected: Set<string>;
  onDone: () => void;
}) {
  const { me } = useAuth();
  const client = useQueryClient();
  const [status, setStatus] = useState<Status | "">("");
  const [tag, setTag] = useState("");
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState("");
  const chosen = tickets.filter((t) => selected.has(t.id));

  async function run(what: string, one: (t: Ticket) => Promise<unknown>) {
    setBusy(true);
    const results = await Promise.allSettled(chosen.map(one));
    const refused = results.filter((r) => r.status === "rejected");
    const first = refused[0];
    setReport(
      `${what}: ${results.length - refused.length} of ${results.length} done` +
        (first ? `; ${refused.length} refused (${errorMessage(first.reason)})` : "."),
    );
    setBusy(false);
    void client.invalidateQueries({ queryKey: ["tickets"] });
  }

  return (
    <div className="bulk-bar" role="group" aria-label="Bulk actions" data-testid="bulk-actions">
      <span>{chosen.length} selected</span>
      <button
        type="button"
        disabled={busy || !chosen.length}
        onClick={() =>
          void run("Assigned to you", (t) =>
            command(`/api/tickets/${t.id}/assign`, { method: "POST", body: { agent_id: me?.id } }),
          )
        }
      >
        Assign to me
      </button>
      <label>
        New status
        <select value={status} onChange={(e) => setStatus(e.target.value as Status | "")}>
          <option value="">Choose…</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {STATUS_LABELS[s]}
            </option>
          ))}
        </select>
      </label>
      <button
        type="button"
        disabled={busy || !chosen.length || !status}
        onClick={() =>
          void run(`Status ${STATUS_LABELS[status as Status]}`, (t) =>
            command(`/api/tickets/${t.id}/status`, { method: "POST", body: { status } }),
          )
        }
      >
        Apply status
      </button>
      <label>
        Tag
        <input value={tag} onChange={(e) => setTag(e.target.value)} maxLength={50} size={10} />
      </label>
      <button
        type="button"
        disabled={busy || !chosen.length || !tag.trim()}
        onClick={() => {
          const name = tag.trim().toLowerCase();
          void run(`Tagged ${name}`, (t) =>
            (t.tags ?? []).includes(name)
              ? Promise.resolve()
              : command(`/api/tickets/${t.id}`, {
                  method: "PATCH",
                  body: { tags: [...(t.tags ?? []), name] },
                }),
          );
        }}
      >
        Add tag
      </button>
      <button type="button" className="link-button" onClick={onDone}>
        Clear selection
      </button>
      <p role="status" className="muted" data-testid="bulk-report">
        {report}
      </p>
    </div>
  );
}
