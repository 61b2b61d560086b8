import { PRIORITY_LABELS, STATUS_LABELS } from "../lib/format";
import type { Priority, Status } from "../lib/types";

export function StatusBadge({ status }: { status: Status }) {
  return (
    <span className={`badge status-${status}`} data-testid="status-badge">
      {STATUS_LABELS[status] ?? status}
    </span>
  );
}

export function PriorityBadge({ priority }: { priority: Priority }) {
  return (
    <span
      className={`badge priority-${priority}`}
      aria-label={`Priority: ${PRIORITY_LABELS[priority]}`}
    >
      {PRIORITY_LABELS[priority] ?? priority}
    </span>
  );
}
