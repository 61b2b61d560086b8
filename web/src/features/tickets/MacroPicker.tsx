// Macros in the composer: choose one (Alt+M focuses the menu), apply it, and the reply box
// gets its text filled in for this ticket (editable); its changes wait beside the box and
// are asked for, one command each, when the reply is sent.

import { useState } from "react";
import { fillMacro, useMacros } from "../../api/macros";
import { command, errorMessage } from "../../lib/api";
import { STATUS_LABELS } from "../../lib/format";
import type { FilledMacro, Ticket } from "../../lib/types";

export const MACRO_MENU_ID = "macro-menu";

export function MacroPicker({
  ticketId,
  onApply,
  onError,
}: {
  ticketId: string;
  onApply: (filled: FilledMacro) => void;
  onError: (text: string) => void;
}) {
  const macros = useMacros(true);
  const [chosen, setChosen] = useState("");
  const [busy, setBusy] = useState(false);
  if (!macros.data?.length) return null;

  async function apply() {
    if (!chosen) return;
    setBusy(true);
    try {
      onApply(await fillMacro(chosen, ticketId));
      setChosen("");
    } catch (error) {
      onError(`Macro not applied: ${errorMessage(error)}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="macro-picker" role="group" aria-label="Macros">
      <label htmlFor={MACRO_MENU_ID}>Macro</label>
      <select
        id={MACRO_MENU_ID}
        value={chosen}
        aria-keyshortcuts="Alt+M"
        onChange={(e) => setChosen(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && chosen) {
            e.preventDefault();
            void apply();
          }
        }}
      >
        <option value="">Choose a macro… (Alt+M)</option>
        {macros.data.map((m) => (
          <option key={m.id} value={m.id}>
            {m.shared ? m.name : `${m.name} (personal)`}
          </option>
        ))}
      </select>
      <button
        type="button"
        className="secondary"
        disabled={!chosen || busy}
        onClick={() => void apply()}
      >
        Apply macro
      </button>
    </div>
  );
}

/** What a filled macro will change, in words ("status Resolved, tag billing, …"). */
export function describeChanges(filled: FilledMacro): string[] {
  const out: string[] = [];
  if (filled.assign_to) out.push(`assign to ${filled.assign_to_name ?? "an agent"}`);
  if (filled.add_tags.length)
    out.push(`add tag${filled.add_tags.length > 1 ? "s" : ""} ${filled.add_tags.join(", ")}`);
  if (filled.status) out.push(`status ${STATUS_LABELS[filled.status]}`);
  return out;
}

/** Ask for a macro's changes through the ticket's own commands, in an order that lets each
 * pass (assign before a status that may close the ticket); the server decides each one.
 * Answers what was done and what was refused (with why). */
export async function runMacroChanges(
  ticketId: string,
  filled: FilledMacro,
  ticket: Ticket | undefined,
): Promise<{ done: string[]; refused: string[] }> {
  const steps: [string, () => Promise<unknown>][] = [];
  if (filled.assign_to)
    steps.push([
      `assign to ${filled.assign_to_name ?? "an agent"}`,
      () =>
        command(`/api/tickets/${ticketId}/assign`, {
          method: "POST",
          body: { agent_id: Number(filled.assign_to) },
        }),
    ]);
  const missing = filled.add_tags.filter((t) => !(ticket?.tags ?? []).includes(t));
  if (missing.length)
    steps.push([
      `tag ${missing.join(", ")}`,
      () =>
        command(`/api/tickets/${ticketId}`, {
          method: "PATCH",
          body: { tags: [...(ticket?.tags ?? []), ...missing] },
        }),
    ]);
  if (filled.status && filled.status !== ticket?.status)
    steps.push([
      `status ${STATUS_LABELS[filled.status]}`,
      () =>
        command(`/api/tickets/${ticketId}/status`, {
          method: "POST",
          body: { status: filled.status },
        }),
    ]);
  const done: string[] = [];
  const refused: string[] = [];
  for (const [what, run] of steps) {
    try {
      await run();
      done.push(what);
    } catch (error) {
      refused.push(`${what} (${errorMessage(error)})`);
    }
  }
  return { done, refused };
}
