import { formatTime } from "../lib/format";
import type { Message } from "../lib/types";
import { AttachmentList } from "./AttachmentList";

export function MessageBubble({
  message,
  mine,
  authorName,
}: {
  message: Message;
  mine: boolean;
  authorName?: string;
}) {
  const kind = message.internal ? "internal" : mine ? "mine" : "theirs";
  const who = authorName ?? (message.author_role === "customer" ? "Customer" : "Support");
  return (
    <article
      className={`bubble bubble-${kind}${message.pending ? " bubble-pending" : ""}`}
      aria-label={message.internal ? `Internal note by ${who}` : `Message by ${who}`}
      data-testid={message.internal ? "internal-note" : "public-message"}
    >
      <header>
        {message.internal && <span className="badge internal-label">Internal note</span>}
        <strong>{mine ? "You" : who}</strong>
        <time dateTime={message.posted_at}>
          {message.pending ? "Sending…" : formatTime(message.posted_at)}
        </time>
      </header>
      {message.body_html !== undefined ? (
        // Rendered and sanitised on the server (nh3, infra/markdown.py): the only HTML the
        // app inserts for a message. Until it arrives (a frame, a pending reply), plain text.
        <div className="bubble-body" dangerouslySetInnerHTML={{ __html: message.body_html }} />
      ) : (
        <p className="bubble-body bubble-plain">{message.body}</p>
      )}
      <AttachmentList attachments={[...message.attachments, ...(message.files ?? [])]} />
    </article>
  );
}
