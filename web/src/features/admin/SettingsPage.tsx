// Settings: business hours and holidays, SLA rules per priority, the assignment policy,
// whether customers choose a ticket's priority, the rate limits, AI drafts (on/off, model,
// limits), e-mail templates with a live preview, and the local outbox. Each save is
// recorded in the audit with before and after.

import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import {
  previewTemplate,
  useAssignment,
  useCalendar,
  useDraftSettings,
  useIntake,
  useOutbox,
  useOutboxMessage,
  useRateLimits,
  useSaveAssignment,
  useSaveCalendar,
  useSaveDraftSettings,
  useSaveIntake,
  useSaveRateLimits,
  useSaveSla,
  useSaveSlaReminders,
  useSaveTemplate,
  useSla,
  useSlaReminders,
  useTemplates,
  type TemplateDraft,
} from "../../api/admin";
import { Empty, ErrorState, Loading } from "../../components/States";
import { ApiError, errorMessage } from "../../lib/api";
import { formatTime } from "../../lib/format";
import { useToasts } from "../../lib/toast";
import type {
  AssignmentSettings,
  CalendarSettings,
  DraftSettings,
  EmailPreview,
  EmailTemplate,
  RateLimits,
  SlaSettings,
} from "../../lib/types";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
const PRIORITIES = ["urgent", "high", "medium", "low"] as const;

function useSaved() {
  const { push } = useToasts();
  return {
    onSuccess: () => push("Saved.", "success"),
    onError: (e: unknown) => push(errorMessage(e), "error"),
  };
}

interface Save<T> {
  mutate: (body: T, callbacks: ReturnType<typeof useSaved>) => void;
  error: unknown;
  isPending: boolean;
}

/** A settings form's state: the draft being edited from the stored settings, its submit
 * (one PUT, then "Saved." or the error as a toast) and the fields the server refused. */
function useSettingsForm<T>(save: Save<T>, initial: T) {
  const saved = useSaved();
  const [draft, setDraft] = useState(initial);
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate(draft, saved);
  };
  const fields = save.error instanceof ApiError ? save.error.fields : {};
  return { draft, setDraft, onSubmit, fields, pending: save.isPending };
}

/** The card every settings form is drawn in, with its heading and save button. */
function SettingsCard({
  label,
  title,
  button,
  row = false,
  pending = false,
  onSubmit,
  children,
}: {
  label: string;
  title: string;
  button: string;
  row?: boolean;
  pending?: boolean;
  onSubmit: (e: FormEvent) => void;
  children: ReactNode;
}) {
  return (
    <form className={row ? "card row" : "card"} aria-label={label} onSubmit={onSubmit}>
      <h2>{title}</h2>
      {children}
      <button type="submit" disabled={pending}>
        {button}
      </button>
    </form>
  );
}

// ----------------------------------------------------------------------------- calendar
const rangesText = (ranges: string[][] | undefined) =>
  (ranges ?? []).map((r) => r.join("-")).join(", ");
const parseRanges = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((r) => r.split("-").map((t) => t.trim()));

function CalendarForm({ calendar }: { calendar: CalendarSettings }) {
  const save = useSaveCalendar();
  const saved = useSaved();
  const [zone, setZone] = useState(calendar.time_zone);
  const [days, setDays] = useState(
    Object.fromEntries(DAYS.map((d) => [d, rangesText(calendar.weekly_hours[d])])),
  );
  const [holidays, setHolidays] = useState(calendar.holidays.join(", "));
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    save.mutate(
      {
        time_zone: zone,
        weekly_hours: Object.fromEntries(DAYS.map((d) => [d, parseRanges(days[d] ?? "")])),
        holidays: holidays
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      },
      saved,
    );
  }
  return (
    <SettingsCard
      label="Business hours"
      title="Business hours and holidays"
      button="Save business hours"
      pending={save.isPending}
      onSubmit={onSubmit}
    >
      <label>
        Time zone
        <input value={zone} onChange={(e) => setZone(e.target.value)} />
      </label>
      <div className="days">
        {DAYS.map((d) => (
          <label key={d}>
            {d}
            <input
              placeholder="closed"
              value={days[d]}
              onChange={(e) => setDays({ ...days, [d]: e.target.value })}
            />
          </label>
        ))}
      </div>
      <label>
        Holidays (YYYY-MM-DD, comma-separated)
        <input value={holidays} onChange={(e) => setHolidays(e.target.value)} />
      </label>
    </SettingsCard>
  );
}

// ----------------------------------------------------------------------------- SLA
function SlaForm({ sla }: { sla: SlaSettings }) {
  const { draft, setDraft, onSubmit, pending } = useSettingsForm(useSaveSla(), sla);
  const set = (
    p: (typeof PRIORITIES)[number],
    k: "first_response_minutes" | "resolution_minutes",
    v: string,
  ) => setDraft({ ...draft, [p]: { ...draft[p], [k]: Number(v) } });
  return (
    <SettingsCard
      label="SLA rules"
      title="SLA rules (business minutes)"
      button="Save SLA rules"
      pending={pending}
      onSubmit={onSubmit}
    >
      <table className="admin-table">
        <thead>
          <tr>
            <th>Priority</th>
            <th>First response</th>
            <th>Resolution</th>
          </tr>
        </thead>
        <tbody>
          {PRIORITIES.map((p) => (
            <tr key={p}>
              <td>{p}</td>
              <td>
                <input
                  type="number"
                  min={1}
                  aria-label={`First response minutes, ${p}`}
                  value={draft[p].first_response_minutes}
                  onChange={(e) => set(p, "first_response_minutes", e.target.value)}
                />
              </td>
              <td>
                <input
                  type="number"
                  min={1}
                  aria-label={`Resolution minutes, ${p}`}
                  value={draft[p].resolution_minutes}
                  onChange={(e) => set(p, "resolution_minutes", e.target.value)}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </SettingsCard>
  );
}

// ----------------------------------------------------------------------------- assignment, intake
function AssignmentForm({ current }: { current: AssignmentSettings }) {
  const { draft, setDraft, onSubmit, pending } = useSettingsForm(useSaveAssignment(), current);
  return (
    <SettingsCard
      row
      label="Assignment policy"
      title="Automatic assignment"
      button="Save assignment policy"
      pending={pending}
      onSubmit={onSubmit}
    >
      <label className="checkbox">
        <input
          type="checkbox"
          checked={draft.enabled}
          onChange={(e) => setDraft({ ...draft, enabled: e.target.checked })}
        />
        On
      </label>
      <label>
        Policy
        <select
          value={draft.policy}
          onChange={(e) =>
            setDraft({ ...draft, policy: e.target.value as AssignmentSettings["policy"] })
          }
        >
          <option value="round_robin">Round robin</option>
          <option value="least_loaded">Least loaded</option>
        </select>
      </label>
    </SettingsCard>
  );
}

function IntakeForm({ allowed }: { allowed: boolean }) {
  const save = useSaveIntake();
  const saved = useSaved();
  return (
    <section className="card row" aria-label="Ticket intake">
      <h2>Ticket intake</h2>
      <label className="checkbox">
        <input
          type="checkbox"
          checked={allowed}
          onChange={(e) => save.mutate({ customers_set_priority: e.target.checked }, saved)}
        />
        Customers may choose a ticket&apos;s priority
      </label>
    </section>
  );
}

function SlaReminderForm({ minutes }: { minutes: number }) {
  const { draft, setDraft, onSubmit, pending } = useSettingsForm(useSaveSlaReminders(), {
    minutes_before: minutes,
  });
  return (
    <SettingsCard
      row
      label="SLA reminders"
      title="SLA reminders"
      button="Save reminders"
      pending={pending}
      onSubmit={onSubmit}
    >
      <label>
        Remind the assigned agent this many minutes before a deadline (0: never)
        <input
          type="number"
          min={0}
          max={10080}
          required
          value={String(draft.minutes_before)}
          onChange={(e) => setDraft({ minutes_before: Number(e.target.value) })}
          data-testid="sla-reminder-minutes"
        />
      </label>
    </SettingsCard>
  );
}

// ----------------------------------------------------------------------------- AI drafts
const DRAFT_LIMITS = [
  ["per_agent", "Drafts per agent per window (0: no limit)", 0],
  ["global", "Drafts for everyone per window (0: no limit)", 0],
  ["window_seconds", "Window (seconds)", 1],
] as const;

function DraftsForm({ current }: { current: DraftSettings }) {
  const { source, ...initial } = current;
  const { draft, setDraft, onSubmit, fields, pending } = useSettingsForm(
    useSaveDraftSettings(),
    initial,
  );
  return (
    <SettingsCard
      label="AI drafts"
      title="AI drafts"
      button="Save AI drafts"
      pending={pending}
      onSubmit={onSubmit}
    >
      <p className="muted">
        Drafts come from {source === "model" ? "the configured model" : "past replies (retrieval)"}
        {source === "model" ? "" : ": no model is configured (DESKSTREAM_LLM_BASE_URL)"}.
      </p>
      <label className="checkbox">
        <input
          type="checkbox"
          checked={draft.enabled}
          onChange={(e) => setDraft({ ...draft, enabled: e.target.checked })}
        />
        Agents may ask for drafts
      </label>
      <label>
        Model (empty: the server&apos;s default)
        <input
          value={draft.model}
          maxLength={200}
          onChange={(e) => setDraft({ ...draft, model: e.target.value })}
        />
      </label>
      {fields.model && <p className="field-error">{fields.model.join(" ")}</p>}
      {DRAFT_LIMITS.map(([name, label, lowest]) => (
        <div key={name}>
          <label>
            {label}
            <input
              type="number"
              min={lowest}
              max={1_000_000}
              value={draft[name]}
              onChange={(e) => setDraft({ ...draft, [name]: Number(e.target.value) })}
            />
          </label>
          {fields[name] && <p className="field-error">{fields[name].join(" ")}</p>}
        </div>
      ))}
    </SettingsCard>
  );
}

// ----------------------------------------------------------------------------- rate limits
const LIMIT_SCOPES = [
  ["sign_in", "Sign-in"],
  ["refresh", "Token refresh"],
  ["ticket_creation", "New tickets"],
  ["messages", "Messages"],
  ["search", "Search"],
] as const;
type LimitScope = (typeof LIMIT_SCOPES)[number][0];
type LimitField = "per_user" | "per_ip" | "window_seconds";

/** Requests allowed per user and per IP address in each window (0: no limit of that kind);
 * over a limit the API answers 429 with Retry-After. */
function RateLimitsForm({ limits }: { limits: RateLimits }) {
  const { draft, setDraft, onSubmit, pending } = useSettingsForm(useSaveRateLimits(), limits);
  const set = (scope: LimitScope, field: LimitField, value: string) =>
    setDraft({ ...draft, [scope]: { ...draft[scope], [field]: Number(value) } });
  return (
    <SettingsCard
      label="Rate limits"
      title="Rate limits"
      button="Save rate limits"
      pending={pending}
      onSubmit={onSubmit}
    >
      <p className="muted">
        Requests allowed per user and per IP address in each window; 0 means no limit of that kind.
        Over a limit the API answers 429 with Retry-After.
      </p>
      <table className="admin-table">
        <thead>
          <tr>
            <th>Action</th>
            <th>Per user</th>
            <th>Per IP address</th>
            <th>Window (seconds)</th>
          </tr>
        </thead>
        <tbody>
          {LIMIT_SCOPES.map(([scope, label]) => (
            <tr key={scope}>
              <td>{label}</td>
              {(["per_user", "per_ip", "window_seconds"] as const).map((field) => (
                <td key={field}>
                  <input
                    type="number"
                    min={field === "window_seconds" ? 1 : 0}
                    aria-label={`${label}: ${field.replace("_", " ").replace("ip", "IP")}`}
                    value={draft[scope][field]}
                    onChange={(e) => set(scope, field, e.target.value)}
                  />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </SettingsCard>
  );
}

// ----------------------------------------------------------------------------- templates
function TemplateEditor({ template }: { template: EmailTemplate }) {
  const save = useSaveTemplate();
  const saved = useSaved();
  const [draft, setDraft] = useState<TemplateDraft>({
    subject: template.subject,
    text_body: template.text_body,
    html_body: template.html_body,
  });
  const [preview, setPreview] = useState<EmailPreview | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // The live preview: rendered by the server with sample values, a moment after typing.
    const controller = new AbortController();
    const timer = setTimeout(() => {
      previewTemplate(template.kind, draft, controller.signal)
        .then((p) => {
          setPreview(p);
          setError(null);
        })
        .catch((e: unknown) => {
          if (!controller.signal.aborted) setError(errorMessage(e));
        });
    }, 250);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [template.kind, draft]);
  const problems = Object.entries(preview?.problems ?? {});
  return (
    <div className="two-columns">
      <form
        aria-label={`Template ${template.kind}`}
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate({ kind: template.kind, draft }, saved);
        }}
      >
        <p className="small muted">
          Placeholders: {template.placeholders.map((p) => `\${${p}}`).join(" ")}
        </p>
        <label>
          Subject
          <input
            value={draft.subject}
            onChange={(e) => setDraft({ ...draft, subject: e.target.value })}
          />
        </label>
        <label>
          Text
          <textarea
            rows={8}
            value={draft.text_body}
            onChange={(e) => setDraft({ ...draft, text_body: e.target.value })}
          />
        </label>
        <label>
          HTML
          <textarea
            rows={8}
            value={draft.html_body}
            onChange={(e) => setDraft({ ...draft, html_body: e.target.value })}
          />
        </label>
        <div className="row">
          <button type="submit" disabled={problems.length > 0}>
            Save template
          </button>
          {!template.is_default && (
            <button
              type="button"
              className="secondary"
              onClick={() => save.mutate({ kind: template.kind, draft: null }, saved)}
            >
              Reset to default
            </button>
          )}
        </div>
      </form>
      <section aria-label="Preview" className="card preview" data-testid="preview">
        <h3>Preview</h3>
        {error && <p className="field-error">{error}</p>}
        {problems.map(([field, messages]) => (
          <p key={field} className="field-error">
            {field}: {messages.join(" ")}
          </p>
        ))}
        {preview && (
          <>
            <p>
              <strong data-testid="preview-subject">{preview.subject}</strong>
            </p>
            {/* Sanitized by the server (nh3) before it is sent. */}
            <div className="preview-html" dangerouslySetInnerHTML={{ __html: preview.html }} />
            <pre className="small">{preview.text}</pre>
          </>
        )}
      </section>
    </div>
  );
}

function Templates() {
  const templates = useTemplates();
  const [kind, setKind] = useState<string | null>(null);
  if (templates.isPending) return <Loading />;
  if (templates.error) return <ErrorState error={templates.error} />;
  const current = templates.data.find((t) => t.kind === kind) ?? templates.data[0];
  return (
    <section className="card" aria-label="E-mail templates">
      <h2>E-mail templates</h2>
      <label>
        Template
        <select value={current?.kind} onChange={(e) => setKind(e.target.value)}>
          {templates.data.map((t) => (
            <option key={t.kind} value={t.kind}>
              {t.kind.replace("_", " ")}
              {t.is_default ? "" : " (edited)"}
            </option>
          ))}
        </select>
      </label>
      {current && (
        <TemplateEditor key={`${current.kind}-${current.updated_at}`} template={current} />
      )}
    </section>
  );
}

function Outbox() {
  const outbox = useOutbox();
  const [open, setOpen] = useState<string | null>(null);
  const message = useOutboxMessage(open);
  if (outbox.isPending) return <Loading />;
  if (outbox.error) return <ErrorState error={outbox.error} />;
  return (
    <section className="card" aria-label="Outbox">
      <h2>Outbox</h2>
      {!outbox.data.enabled && <p className="muted">Mail is not kept in the local outbox here.</p>}
      {outbox.data.results.length === 0 ? (
        <Empty>No messages.</Empty>
      ) : (
        <ul className="outbox">
          {outbox.data.results.map((m) => (
            <li key={m.name}>
              <button type="button" className="link-button" onClick={() => setOpen(m.name)}>
                {m.subject}
              </button>{" "}
              <span className="muted small">
                to {m.to}, {formatTime(m.stored_at)}
              </span>
            </li>
          ))}
        </ul>
      )}
      {message.data && (
        <article className="card">
          <h3>{message.data.subject}</h3>
          <pre className="small">{message.data.text}</pre>
        </article>
      )}
    </section>
  );
}

export function SettingsPage() {
  const calendar = useCalendar();
  const sla = useSla();
  const assignment = useAssignment();
  const intake = useIntake();
  const limits = useRateLimits();
  const drafts = useDraftSettings();
  const reminders = useSlaReminders();
  const failed =
    calendar.error ??
    sla.error ??
    assignment.error ??
    intake.error ??
    limits.error ??
    drafts.error ??
    reminders.error;
  if (failed) return <ErrorState error={failed} />;
  return (
    <>
      <h1>Settings</h1>
      {calendar.data ? <CalendarForm calendar={calendar.data} /> : <Loading />}
      {sla.data ? <SlaForm sla={sla.data} /> : <Loading />}
      {reminders.data ? <SlaReminderForm minutes={reminders.data.minutes_before} /> : <Loading />}
      {assignment.data ? <AssignmentForm current={assignment.data} /> : <Loading />}
      {intake.data ? <IntakeForm allowed={intake.data.customers_set_priority} /> : <Loading />}
      {limits.data ? <RateLimitsForm limits={limits.data} /> : <Loading />}
      {drafts.data ? <DraftsForm current={drafts.data} /> : <Loading />}
      <Templates />
      <Outbox />
    </>
  );
}
