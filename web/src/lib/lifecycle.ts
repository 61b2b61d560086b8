// The status moves of the lifecycle table (lifecycle.gen.ts, generated from domain/lifecycle.py
// like docs/lifecycle.md): the status menu offers only the moves the server would accept. The
// server still decides; a refused move is rolled back and shown.

import { TRANSITIONS } from "./lifecycle.gen";
import type { Role, Status, Ticket } from "./types";

/** The statuses this role may move the ticket to with a status command. */
export function nextStatuses(
  ticket: Pick<Ticket, "status" | "assigned_agent_id">,
  role: Role,
): Status[] {
  return TRANSITIONS.filter(({ from, to, trigger, roles }) => {
    if (trigger !== "status command" || from !== ticket.status || !roles.includes(role)) {
      return false;
    }
    // Reopening goes to In progress with an agent, to Open without one (the invariant of
    // docs/lifecycle.md: only Open has no agent).
    if (from === "resolved" && to === "in_progress") return ticket.assigned_agent_id !== null;
    if (from === "resolved" && to === "open") return ticket.assigned_agent_id === null;
    return true;
  }).map(({ to }) => to);
}
