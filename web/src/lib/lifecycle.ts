// The status commands of the lifecycle table (docs/lifecycle.md, generated from
// domain/lifecycle.py): the status menu offers only the moves the server would accept. The
// server still decides; a refused move is rolled back and shown.

import type { Role, Status, Ticket } from "./types";

const STAFF: Role[] = ["agent", "admin"];
const EVERYONE: Role[] = ["customer", "agent", "admin"];
const ADMIN: Role[] = ["admin"];

const MOVES: [Status, Status, Role[]][] = [
  ["assigned", "in_progress", STAFF],
  ["in_progress", "waiting_on_customer", STAFF],
  ["waiting_on_customer", "in_progress", STAFF],
  ["open", "resolved", EVERYONE],
  ["assigned", "resolved", EVERYONE],
  ["in_progress", "resolved", EVERYONE],
  ["waiting_on_customer", "resolved", EVERYONE],
  ["resolved", "in_progress", EVERYONE],
  ["resolved", "open", EVERYONE],
  ["resolved", "closed", EVERYONE],
  ["open", "closed", ADMIN],
  ["assigned", "closed", ADMIN],
  ["in_progress", "closed", ADMIN],
  ["waiting_on_customer", "closed", ADMIN],
];

/** The statuses this role may move the ticket to with a status command. */
export function nextStatuses(
  ticket: Pick<Ticket, "status" | "assigned_agent_id">,
  role: Role,
): Status[] {
  return MOVES.filter(([from, to, roles]) => {
    if (from !== ticket.status || !roles.includes(role)) return false;
    // Reopening goes to In progress with an agent, to Open without one.
    if (from === "resolved" && to === "in_progress") return ticket.assigned_agent_id !== null;
    if (from === "resolved" && to === "open") return ticket.assigned_agent_id === null;
    return true;
  }).map(([, to]) => to);
}
