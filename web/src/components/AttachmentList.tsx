import { formatSize } from "../lib/format";
import type { Attachment, TicketFile } from "../lib/types";

/** Metadata a message body listed, or an uploaded file with its scan state. */
export type Shown = Attachment | TicketFile;

function isFile(a: Shown): a is TicketFile {
  return "status" in a;
}

/** Files of a ticket or message. Uploaded files show their scan state: a link (and a
 * preview for images) only once the scan said clean; never for a quarantined file. */
export function AttachmentList({
  attachments,
  label = "Attachments",
}: {
  attachments: Shown[];
  label?: string;
}) {
  if (!attachments.length) return null;
  return (
    <ul className="attachments" aria-label={label}>
      {attachments.map((a, i) => (
        <li
          key={isFile(a) ? a.id : `${a.name}-${i}`}
          data-status={isFile(a) ? a.status : undefined}
        >
          {isFile(a) ? <FileEntry file={a} /> : <Listed attachment={a} />}
        </li>
      ))}
    </ul>
  );
}

function Listed({ attachment: a }: { attachment: Attachment }) {
  return (
    <>
      <span className="muted">Attachment:</span> {a.name}
      {a.size !== undefined && <span className="muted"> ({formatSize(a.size)})</span>}
    </>
  );
}

function FileEntry({ file: a }: { file: TicketFile }) {
  const size = <span className="muted"> ({formatSize(a.size)})</span>;
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
    const image = a.content_type.startsWith("image/");
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
        <a
          href={a.url}
          target="_blank"
          rel="noopener noreferrer"
          download={image ? undefined : a.name}
        >
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
