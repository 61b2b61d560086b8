import { formatSize } from "../lib/format";
import type { Attachment } from "../lib/types";

/** Files of a ticket or message. Uploaded files show their scan state: a link (and a
 * preview for images) only once the scan said clean; never for a quarantined file. */
export function AttachmentList({
  attachments,
  label = "Attachments",
}: {
  attachments: Attachment[];
  label?: string;
}) {
  if (!attachments.length) return null;
  return (
    <ul className="attachments" aria-label={label}>
      {attachments.map((a, i) => (
        <li key={a.id ?? `${a.name}-${i}`} data-status={a.status}>
          <AttachmentEntry attachment={a} />
        </li>
      ))}
    </ul>
  );
}

function AttachmentEntry({ attachment: a }: { attachment: Attachment }) {
  const size = a.size !== undefined && (
    <span className="muted"> ({formatSize(a.size)})</span>
  );
  if (a.status === "scanning") {
    return (
      <>
        <span className="muted">Attachment:</span> {a.name}
        {size} <span className="badge">Scanning for viruses…</span>
      </>
    );
  }
  if (a.status === "infected") {
    return (
      <>
        <span className="muted">Attachment:</span> {a.name}
        {size}{" "}
        <span className="badge badge-danger" role="note">
          Blocked: the virus scanner found malware
        </span>
      </>
    );
  }
  if (a.status === "clean" && a.url) {
    const image = a.content_type?.startsWith("image/");
    return (
      <>
        {image && (
          <a href={a.url} target="_blank" rel="noopener noreferrer">
            <img
              className="attachment-preview"
              src={a.url}
              alt={`Preview of ${a.name}`}
              loading="lazy"
            />
          </a>
        )}
        <span className="muted">Attachment:</span>{" "}
        <a href={a.url} target="_blank" rel="noopener noreferrer" download={image ? undefined : a.name}>
          {a.name}
        </a>
        {size}
      </>
    );
  }
  return (
    <>
      <span className="muted">Attachment:</span> {a.name}
      {size}
    </>
  );
}
