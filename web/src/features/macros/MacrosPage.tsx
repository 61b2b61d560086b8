// Macros (canned replies): the shared ones (admins edit them) and my personal ones. A macro
// is a reply with placeholders and, optionally, a status, tags and an assignee that applying
// it asks for when the reply is sent.

import { useState, type FormEvent } from "react";
import { useDeleteMacro, useMacros, useSaveMacro, type MacroInput } from "../../api/macros";
import { Empty, ErrorState, Loading } from "../../components/States";
import { errorMessage } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { STATUS_LABELS } from "../../lib/format";
import { STATUSES, type Macro, type Status } from "../../lib/types";

const PLACEHOLDERS = [
  "{{customer.name}}",
  "{{customer.email}}",
  "{{ticket.subject}}",
  "{{ticket.status}}",
  "{{agent.name}}",
];

const EMPTY: MacroInput = { name: "", body: "", status: null, add_tags: [], assign_to: null };

export function MacrosPage() {
  const { me } = useAuth();
  const macros = useMacros(true);
  const remove = useDeleteMacro();
  const [editing, setEditing] = useState<Macro | null>(null);
  const [report, setReport] = useState("");
  return (
    <main id="main" className="macros-page">
      <h1 tabIndex={-1}>Macros</h1>
      <p className="muted">
        Canned replies for the composer (Alt+M on a ticket). Placeholders: {PLACEHOLDERS.join(", ")}
        .
      </p>
      <section aria-labelledby="macro-list-title" className="card">
        <h2 id="macro-list-title">Your macros</h2>
        {macros.isPending ? (
          <Loading label="Loading macros…" />
        ) : macros.isError ? (
          <ErrorState error={macros.error} onRetry={() => void macros.refetch()} />
        ) : macros.data.length === 0 ? (
          <Empty>No macros yet.</Empty>
        ) : (
          <ul className="macro-list" data-testid="macro-list">
            {macros.data.map((m) => (
              <li key={m.id}>
                <strong>{m.name}</strong>{" "}
                <span className="badge">{m.shared ? "Shared" : "Personal"}</span>
                <p className="macro-body">{m.body}</p>
                {m.editable && (
                  <div className="row">
                    <button type="button" className="secondary" onClick={() => setEditing(m)}>
                      Edit {m.name}
                    </button>
                    <button
                      type="button"
                      className="secondary"
                      onClick={() =>
                        remove.mutate(m.id, {
                          onSuccess: () => setReport(`Deleted “${m.name}”.`),
                          onError: (e) => setReport(`Not deleted: ${errorMessage(e)}`),
                        })
                      }
                    >
                      Delete {m.name}
                    </button>
                  </div>
                )}
              </li>
            ))}
          </ul>
        )}
        <p role="status" className="muted">
          {report}
        </p>
      </section>
      <MacroForm
        key={editing?.id ?? "new"}
        macro={editing}
        canShare={me?.role === "admin"}
        onDone={(text) => {
          setReport(text);
          setEditing(null);
        }}
      />
    </main>
  );
}

function MacroForm({
  macro,
  canShare,
  onDone,
}: {
  macro: Macro | null;
  canShare: boolean;
  onDone: (text: string) => void;
}) {
  const save = useSaveMacro();
  const [input, setInput] = useState<MacroInput>(
    macro
      ? {
          name: macro.name,
          body: macro.body,
          status: macro.status,
          add_tags: macro.add_tags,
          assign_to: macro.assign_to,
        }
      : EMPTY,
  );
  const [shared, setShared] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const set = (change: Partial<MacroInput>) => setInput((all) => ({ ...all, ...change }));

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    const body: MacroInput = macro ? input : { ...input, shared };
    save.mutate(
      { id: macro?.id, input: body },
      {
        onSuccess: () => {
          setError(null);
          setInput(EMPTY);
          onDone(macro ? `Saved “${input.name}”.` : `Created “${input.name}”.`);
        },
        onError: (err) => setError(errorMessage(err)),
      },
    );
  }

  return (
    <section aria-labelledby="macro-form-title" className="card">
      <h2 id="macro-form-title">{macro ? `Edit “${macro.name}”` : "New macro"}</h2>
      <form onSubmit={onSubmit} className="macro-form" noValidate>
        <label>
          Name
          <input
            value={input.name}
            maxLength={80}
            onChange={(e) => set({ name: e.target.value })}
            required
          />
        </label>
        <label>
          Reply text
          <textarea
            rows={4}
            value={input.body}
            onChange={(e) => set({ body: e.target.value })}
            required
          />
        </label>
        <label>
          Then set status
          <select
            value={input.status ?? ""}
            onChange={(e) => set({ status: (e.target.value || null) as Status | null })}
          >
            <option value="">No change</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABELS[s]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Add tags (comma-separated)
          <input
            value={input.add_tags.join(", ")}
            onChange={(e) =>
              set({
                add_tags: e.target.value
                  .split(",")
                  .map((t) => t.trim())
                  .filter(Boolean),
              })
            }
          />
        </label>
        <label className="checkbox">
          <input
            type="checkbox"
            checked={input.assign_to === "me"}
            onChange={(e) => set({ assign_to: e.target.checked ? "me" : null })}
          />{" "}
          Assign the ticket to whoever applies it
        </label>
        {!macro && canShare && (
          <label className="checkbox">
            <input type="checkbox" checked={shared} onChange={(e) => setShared(e.target.checked)} />{" "}
            Shared with all agents
          </label>
        )}
        {error && (
          <p className="field-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={save.isPending}>
          {macro ? "Save macro" : "Create macro"}
        </button>
      </form>
    </section>
  );
}
