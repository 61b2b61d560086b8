import { PRIORITY_LABELS, STATUS_LABELS } from "../lib/format";
import { PRIORITIES, STATUSES, type Priority, type Status, type TicketFilters } from "../lib/types";

/** Status, priority and creation-date filters (single choice each; empty = any). */
export function Filters({
  value,
  onChange,
}: {
  value: TicketFilters;
  onChange: (v: TicketFilters) => void;
}) {
  return (
    <fieldset className="filters">
      <legend>Filters</legend>
      <label>
        Status
        <select
          value={value.status?.[0] ?? ""}
          onChange={(e) =>
            onChange({ ...value, status: e.target.value ? [e.target.value as Status] : undefined })
          }
        >
          <option value="">Any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {STATUS_LABELS[s]}
            </option>
          ))}
        </select>
      </label>
      <label>
        Priority
        <select
          value={value.priority?.[0] ?? ""}
          onChange={(e) =>
            onChange({
              ...value,
              priority: e.target.value ? [e.target.value as Priority] : undefined,
            })
          }
        >
          <option value="">Any</option>
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {PRIORITY_LABELS[p]}
            </option>
          ))}
        </select>
      </label>
      <label>
        Has tags
        <input
          value={value.tags?.join(",") ?? ""}
          size={10}
          onChange={(e) => {
            const tags = e.target.value
              .split(",")
              .map((t) => t.trim().toLowerCase())
              .filter(Boolean);
            onChange({ ...value, tags: tags.length ? tags : undefined });
          }}
        />
      </label>
      <label>
        Created from
        <input
          type="date"
          value={value.created_from ?? ""}
          onChange={(e) => onChange({ ...value, created_from: e.target.value || undefined })}
        />
      </label>
      <label>
        Created before
        <input
          type="date"
          value={value.created_to ?? ""}
          onChange={(e) => onChange({ ...value, created_to: e.target.value || undefined })}
        />
      </label>
      {(value.status || value.priority || value.tags || value.created_from || value.created_to) && (
        <button type="button" className="link-button" onClick={() => onChange({})}>
          Clear filters
        </button>
      )}
    </fieldset>
  );
}
