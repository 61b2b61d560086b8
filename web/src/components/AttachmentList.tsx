import { formatSize } from "../lib/format";
import type { Attachment } from "../lib/types";

export function AttachmentList({ attachments }: { attachments: Attachment[] }) {
  if (!attachments.length) return null;
  return (
    <ul className="attachments" aria-label="Attachments">
      {attachments.map((a, i) => (
        <li key={`${a.name}-${i}`}>
          <span className="muted">Attachment:</span> {a.name}
          {a.size !== undefined && <span className="muted"> ({formatSize(a.size)})</span>}
        </li>
      ))}
    </ul>
  );
}
