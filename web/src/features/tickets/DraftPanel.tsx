// The AI panel of the agent's ticket page: generate a draft reply, watch it stream, edit it,
// insert it into the reply box (the reply then names the draft), regenerate. Staff only: the
// caller never renders it for customers. Nothing is sent from here.

import { useState } from "react";
import { useRequestDraft } from "../../api/drafts";
import { ApiError, errorMessage } from "../../lib/api";
import { useStream } from "../../lib/realtime-react";
import type { Draft, DraftFrame } from "../../lib/types";

type Phase = "idle" | "writing" | "ready" | "refused" | "failed" | "limited" | "error";

interface Shown {
  phase: Phase;
  draftId: string | null;
  text: string;
  message: string;
  source: string;
  model: string;
}

const IDLE: Shown = { phase: "idle", draftId: null, text: "", message: "", source: "", model: "" };

function label(source: string, model: string): string {
  if (source === "retrieval") return "From similar resolved tickets";
  return model ? `AI draft · ${model}` : "AI draft";
}

function fromDraft(draft: Draft): Shown {
  const phase: Phase = draft.status === "requested" ? "writing" : draft.status;
  return {
    phase,
    draftId: draft.id,
    text: draft.text,
    message: draft.reason,
    source: draft.source,
    model: draft.model,
  };
}

export function DraftPanel({
  ticketId,
  onInsert,
}: {
  ticketId: string;
  onInsert: (text: string, draftId: string) => void;
}) {
  const ask = useRequestDraft(ticketId);
  const [shown, setShown] = useState<Shown>(IDLE);
  const [allowInternal, setAllowInternal] = useState(false);

  useStream(
    "drafts",
    {
      onDraft: (frame: DraftFrame) => {
        setShown((now) => {
          // Frames of the draft being written (or of the one about to be named by the answer).
          if (now.phase !== "writing" || (now.draftId && now.draftId !== frame.draft_id))
            return now;
          if (frame.kind === "started")
            return { ...now, draftId: frame.draft_id, source: frame.source ?? "", text: "" };
          if (frame.kind === "delta")
            return { ...now, draftId: frame.draft_id, text: now.text + (frame.text ?? "") };
          const phase: Phase =
            frame.status === "ready" || frame.status === "refused" ? frame.status : "failed";
          return {
            phase,
            draftId: frame.draft_id,
            text: frame.status === "ready" ? (frame.text ?? "") : "",
            message: frame.reason ?? "",
            source: frame.source ?? now.source,
            model: frame.model ?? now.model,
          };
        });
      },
    },
    { ticketId },
  );

  async function generate() {
    setShown({ ...IDLE, phase: "writing" });
    try {
      const answer = await ask.mutateAsync({ allowInternal });
      // The answer is the record: it wins over frames still writing. Once the frames have
      // finished this draft, the panel already shows the record, and the agent may have
      // edited it since: an answer that comes later (a loaded server) must not undo that.
      setShown((now) =>
        now.draftId === answer.draft.id &&
        (answer.draft.status === "requested" || now.phase !== "writing")
          ? now
          : fromDraft(answer.draft),
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 429) {
        setShown({ ...IDLE, phase: "limited", message: error.message });
      } else {
        setShown({ ...IDLE, phase: "error", message: errorMessage(error) });
      }
    }
  }

  const busy = shown.phase === "writing";
  return (
    <section className="draft-panel" aria-label="AI draft" data-testid="draft-panel">
      <div className="row">
        <h3>AI draft</h3>
        {shown.source && <span className="muted">{label(shown.source, shown.model)}</span>}
      </div>
      <label className="checkbox">
        <input
          type="checkbox"
          checked={allowInternal}
          onChange={(e) => setAllowInternal(e.target.checked)}
          disabled={busy}
        />{" "}
        May use internal notes
      </label>
      {busy && (
        <p className="muted" role="status">
          Writing a draft…
        </p>
      )}
      {(shown.phase === "refused" || shown.phase === "failed") && (
        <p className="field-error" role="alert" data-testid="draft-refusal">
          {shown.phase === "refused" ? "No draft: " : "The draft failed: "}
          {shown.message}
        </p>
      )}
      {shown.phase === "limited" && (
        <p className="field-error" role="alert" data-testid="draft-limited">
          Too many drafts for now. {shown.message}
        </p>
      )}
      {shown.phase === "error" && (
        <p className="field-error" role="alert">
          {shown.message}
        </p>
      )}
      {(busy || shown.phase === "ready") && (
        <>
          <label htmlFor="draft-text" className="visually-hidden">
            Draft text
          </label>
          <textarea
            id="draft-text"
            data-testid="draft-text"
            rows={6}
            value={shown.text}
            readOnly={busy}
            onChange={(e) => setShown({ ...shown, text: e.target.value })}
          />
        </>
      )}
      <div className="row">
        <button type="button" onClick={() => void generate()} disabled={busy}>
          {shown.phase === "idle" ? "Generate draft" : "Regenerate"}
        </button>
        {shown.phase === "ready" && shown.draftId && (
          <button
            type="button"
            onClick={() => onInsert(shown.text, shown.draftId ?? "")}
            disabled={!shown.text.trim()}
          >
            Insert into reply
          </button>
        )}
      </div>
    </section>
  );
}
