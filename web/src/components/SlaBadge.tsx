// SLA badges with live countdowns: the next due target of a ticket (first response, then
// resolution), "due in 1 h 20 min", "due soon" within the hour, "overdue"/"breached" after.

import { useEffect, useState } from "react";
import type { Ticket } from "../lib/types";

const SOON_MS = 60 * 60 * 1000;

/** The current time, refreshed every `everyMs` (one timer per component). */
export function useNow(everyMs = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function formatSpan(ms: number): string {
  const minutes = Math.max(1, Math.round(Math.abs(ms) / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

type SlaTicket = Pick<
  Ticket,
  "status" | "sla_breaches" | "sla_first_response_due" | "sla_resolution_due"
>;

export interface SlaState {
  tone: "ok" | "soon" | "breached";
  text: string;
}

export function slaState(ticket: SlaTicket, now: number): SlaState | null {
  if (ticket.status === "resolved" || ticket.status === "closed") return null;
  const targets: [string, string | null | undefined][] = [
    ["First reply", ticket.sla_first_response_due],
    ["Resolution", ticket.sla_resolution_due],
  ];
  const next = targets.find(([, due]) => due);
  const breached = (ticket.sla_breaches ?? []).length > 0;
  if (!next) return breached ? { tone: "breached", text: "SLA breached" } : null;
  const [what, due] = next;
  const left = new Date(due!).getTime() - now;
  if (left < 0) return { tone: "breached", text: `${what} overdue by ${formatSpan(left)}` };
  if (breached)
    return { tone: "breached", text: `SLA breached · ${what} due in ${formatSpan(left)}` };
  return { tone: left < SOON_MS ? "soon" : "ok", text: `${what} due in ${formatSpan(left)}` };
}

export function SlaBadge({ ticket }: { ticket: SlaTicket }) {
  const now = useNow();
  const state = slaState(ticket, now);
  if (!state) return null;
  return (
    <span className={`badge sla sla-${state.tone}`} data-testid="sla-badge">
      {state.text}
    </span>
  );
}
