// The notification centre: a bell with the unread count and the list, live from the user
// stream (each new notification also pops up as a toast), and the toasts themselves.

import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { useMarkRead, useNotifications } from "../../api/notifications";
import { useEmailPreferences, useSaveEmailPreferences } from "../../api/satisfaction";
import { useAuth } from "../../lib/auth";
import { Empty, ErrorState, Loading } from "../../components/States";
import { STATUS_LABELS, formatTime, textOf } from "../../lib/format";
import { useStream } from "../../lib/realtime-react";
import { useToasts } from "../../lib/toast";
import type { EventFrame, Notification, Status } from "../../lib/types";

export function describeNotification(n: Pick<Notification, "kind" | "payload">): string {
  const p = n.payload;
  const subject = p.ticket_subject ? `“${textOf(p.ticket_subject)}”` : "a ticket";
  switch (n.kind) {
    case "public_reply":
      return `New reply on ${subject}: ${textOf(p.excerpt)}`;
    case "internal_note":
      return `Internal note on ${subject}: ${textOf(p.excerpt)}`;
    case "status_changed":
      return `${subject} is now ${STATUS_LABELS[p.to_status as Status] ?? String(p.to_status)}`;
    case "assigned":
      return `${subject} was assigned to you`;
    case "unassigned":
      return `${subject} was taken off your queue`;
    case "sla_reminder":
      return `${targetLabel(p.target)} due soon on ${subject} (${formatTime(String(p.deadline))})`;
    case "sla_breached":
      return `SLA breached: ${targetLabel(p.target)} on ${subject} was due ${formatTime(String(p.deadline))}`;
    default:
      return `Update on ${subject}`;
  }
}

function targetLabel(target: unknown): string {
  return target === "resolution" ? "Resolution" : "First response";
}

function frameText(frame: EventFrame): string {
  const d = frame.data;
  switch (d.reason) {
    case "new_message":
      return `New message: ${textOf(d.excerpt)}`;
    case "status_changed":
      return `Status changed to ${STATUS_LABELS[d.to_status as Status] ?? String(d.to_status)}`;
    case "assigned_to_you":
      return "A ticket was assigned to you";
    case "unassigned_from_you":
      return "A ticket was taken off your queue";
    case "sla_reminder":
      return `${targetLabel(d.target)} due soon on your ticket`;
    case "sla_breached":
      return `SLA breached: ${targetLabel(d.target)} on your ticket`;
    default:
      return "Ticket updated";
  }
}

export function NotificationCentre() {
  const client = useQueryClient();
  const toasts = useToasts();
  const { me, isStaff } = useAuth();
  const isAdmin = me?.role === "admin";
  const notifications = useNotifications(true);
  const markRead = useMarkRead();
  const [open, setOpen] = useState(false);
  const panel = useRef<HTMLDivElement>(null);

  useStream("user", {
    onEvent: (frame) => {
      if (frame.kind !== "notification") return;
      void client.invalidateQueries({ queryKey: ["notifications"] });
      // An assignment also moves the status to Assigned: its own toast says it better.
      if (frame.data.reason === "status_changed" && frame.data.to_status === "assigned") return;
      // One toast per ticket: this one replaces the desk's "New ticket" toast for it.
      toasts.push(frameText(frame), "info", `/tickets/${frame.ticket_id}`, {
        key: `ticket:${frame.ticket_id}`,
      });
    },
    onResync: () => void client.invalidateQueries({ queryKey: ["notifications"] }),
  });

  // Admins hear of every SLA breach through the staff queue's `sla_breached` frame (it names
  // their shared notification); the assigned agent gets a `notification` frame instead.
  useStream(
    "queue",
    {
      onEvent: (frame) => {
        if (frame.kind !== "sla_breached") return;
        void client.invalidateQueries({ queryKey: ["notifications"] });
        toasts.push(
          `SLA breached: ${targetLabel(frame.data.target)} on a ticket`,
          "error",
          `/tickets/${frame.ticket_id}`,
          { key: `ticket:${frame.ticket_id}` },
        );
      },
    },
    { enabled: isAdmin },
  );

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && setOpen(false);
    const onClick = (e: MouseEvent) => {
      if (panel.current && !panel.current.parentElement?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("mousedown", onClick);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("mousedown", onClick);
    };
  }, [open]);

  const unread = notifications.data?.unread_count ?? 0;
  return (
    <div className="notification-centre">
      <button
        type="button"
        className="icon-button"
        aria-expanded={open}
        aria-controls="notification-panel"
        onClick={() => setOpen((o) => !o)}
        data-testid="notification-bell"
      >
        <svg
          aria-hidden="true"
          width="20"
          height="20"
          viewBox="0 0 24 24"
          fill="none"
          stroke="currentColor"
          strokeWidth="2"
        >
          <path d="M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
        </svg>
        <span className="sr-only">Notifications</span>
        {unread > 0 && (
          <span className="unread" data-testid="unread-count">
            {unread}
            <span className="sr-only"> unread</span>
          </span>
        )}
      </button>
      {open && (
        <div
          id="notification-panel"
          ref={panel}
          className="notification-panel card"
          role="region"
          aria-label="Notifications"
        >
          <div className="row spread">
            <h2>Notifications</h2>
            {unread > 0 && (
              <button type="button" className="link-button" onClick={() => markRead.mutate("all")}>
                Mark all read
              </button>
            )}
          </div>
          {notifications.isPending ? (
            <Loading />
          ) : notifications.isError ? (
            <ErrorState error={notifications.error} onRetry={() => void notifications.refetch()} />
          ) : notifications.data.results.length === 0 ? (
            <Empty>No notifications.</Empty>
          ) : (
            <ul className="notifications">
              {notifications.data.results.map((n) => (
                <li key={n.id} className={n.read ? "read" : "unread-item"}>
                  <Link
                    to={`/tickets/${n.ticket_id}`}
                    onClick={() => {
                      if (!n.read) markRead.mutate(n.id);
                      setOpen(false);
                    }}
                  >
                    {describeNotification(n)}
                  </Link>
                  <span className="muted small">{formatTime(n.created_at)}</span>
                </li>
              ))}
            </ul>
          )}
          {isStaff && <SlaEmailChoice />}
        </div>
      )}
    </div>
  );
}

function SlaEmailChoice() {
  const prefs = useEmailPreferences(true);
  const save = useSaveEmailPreferences();
  // What the user chose, shown at once (a controlled checkbox would flip back until the
  // request settles); the server's answer replaces it.
  const [chosen, setChosen] = useState<boolean | null>(null);
  const checked = chosen ?? Boolean(prefs.data?.sla_emails);
  return (
    <label className="checkbox sla-email-choice">
      <input
        type="checkbox"
        checked={checked}
        disabled={prefs.isPending}
        onChange={(e) => {
          const value = e.target.checked;
          setChosen(value);
          save.mutate({ sla_emails: value }, { onError: () => setChosen(null) });
        }}
        data-testid="sla-email-choice"
      />
      Also e-mail me SLA reminders and breaches
    </label>
  );
}

export function Toasts() {
  const { toasts, dismiss } = useToasts();
  return (
    <div className="toasts" aria-live="polite" data-testid="toasts">
      {toasts.map((t) => (
        <div
          key={t.id}
          className={`toast toast-${t.tone}`}
          role={t.tone === "error" ? "alert" : "status"}
        >
          {t.href ? <Link to={t.href}>{t.text}</Link> : <span>{t.text}</span>}
          {t.action && (
            <button
              type="button"
              className="toast-action"
              onClick={() => {
                t.action?.run();
                dismiss(t.id);
              }}
            >
              {t.action.label}
            </button>
          )}
          <button
            type="button"
            className="icon-button"
            aria-label="Dismiss"
            onClick={() => dismiss(t.id)}
          >
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
