// Keyboard shortcuts on a ticket (staff): r reply, n internal note, a assign to me, s status,
// j next ticket in my queue. Ctrl/⌘+Enter sends (the reply box). `?` lists them (the app's
// overlay). Keys typed into a field are the field's.

import { useEffect } from "react";
import { useNavigate, useParams } from "react-router";
import { fetchTicketPage, ticketListPath } from "../../api/tickets";
import { useAuth } from "../../lib/auth";

export function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
}

export function useTicketShortcuts(enabled: boolean): void {
  const navigate = useNavigate();
  const { ticketId = "" } = useParams();
  const { me } = useAuth();
  useEffect(() => {
    if (!enabled) return;
    const click = (name: string) =>
      document.querySelector<HTMLElement>(`[data-shortcut="${name}"]`)?.click();
    async function next() {
      const page = await fetchTicketPage(
        ticketListPath(
          { agent: String(me?.id ?? ""), status: ["assigned", "in_progress"], sort: "created_at" },
          20,
        ),
      );
      const other = page.results.find((t) => t.id !== ticketId);
      if (other) void navigate(`/tickets/${other.id}`);
    }
    function onKey(e: KeyboardEvent) {
      if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
      const reply = document.getElementById("reply-body");
      const note = document.querySelector<HTMLInputElement>('[data-shortcut="internal-note"]');
      switch (e.key) {
        case "r":
          if (note?.checked) note.click();
          reply?.focus();
          break;
        case "n":
          if (note && !note.checked) note.click();
          document.getElementById("reply-body")?.focus();
          break;
        case "a":
          click("assign-to-me");
          break;
        case "s":
          document.querySelector<HTMLElement>('[data-testid="status-select"]')?.focus();
          break;
        case "j":
          void next();
          break;
        default:
          return;
      }
      e.preventDefault();
    }
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [enabled, navigate, ticketId, me?.id]);
}
