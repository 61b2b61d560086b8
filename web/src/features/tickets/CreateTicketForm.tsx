import { useState, type FormEvent } from "react";
import { useUploads, type Upload } from "../../api/attachments";
import { useCreateTicket } from "../../api/tickets";
import { FileDrop } from "../../components/FileDrop";
import { ApiError, errorMessage } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { PRIORITY_LABELS } from "../../lib/format";
import { PRIORITIES, type CommandResult, type Priority } from "../../lib/types";

const SUBJECT_MAX = 200;
const DESCRIPTION_MAX = 20_000;

type Errors = Partial<Record<"subject" | "description" | "priority" | "form", string>>;

export function validateTicket(subject: string, description: string): Errors {
  const errors: Errors = {};
  if (!subject.trim()) errors.subject = "Enter a subject.";
  else if (subject.length > SUBJECT_MAX) errors.subject = `At most ${SUBJECT_MAX} characters.`;
  if (description.length > DESCRIPTION_MAX)
    errors.description = `At most ${DESCRIPTION_MAX} characters.`;
  return errors;
}

export function CreateTicketForm({
  onCreated,
  upload,
}: {
  onCreated: (result: CommandResult) => void;
  upload?: Upload;
}) {
  const create = useCreateTicket();
  // Customers choose the priority only when an admin allows it; tags are staff's alone.
  const mayPrioritise = useAuth().me?.may_set_priority ?? false;
  const uploads = useUploads(upload);
  const [created, setCreated] = useState<CommandResult | null>(null);
  const [subject, setSubject] = useState("");
  const [description, setDescription] = useState("");
  const [priority, setPriority] = useState<Priority>("medium");
  const [errors, setErrors] = useState<Errors>({});

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    const found = validateTicket(subject, description);
    setErrors(found);
    if (Object.keys(found).length) return;
    try {
      const result =
        created ??
        (await create.mutateAsync({
          subject: subject.trim(),
          description,
          ...(mayPrioritise ? { priority } : {}),
        }));
      setCreated(result);
      // The files go to the new ticket; a refused one keeps the form open to say why.
      const done = await uploads.run(result.id, uploads.items);
      if (done.some((item) => item.state === "failed")) return;
      setSubject("");
      setDescription("");
      setPriority("medium");
      setCreated(null);
      uploads.clear();
      onCreated(result);
    } catch (error) {
      // Server-side validation: show each field's message beside the field.
      if (error instanceof ApiError && error.status === 400) {
        const f = error.fields;
        setErrors({
          subject: f.subject?.join(" "),
          description: f.description?.join(" "),
          priority: f.priority?.join(" "),
          form: Object.keys(f).length ? undefined : errorMessage(error),
        });
      } else setErrors({ form: errorMessage(error) });
    }
  }

  const uploading = uploads.items.some((item) => item.state === "uploading");

  return (
    <form
      className="card create-ticket"
      onSubmit={(e) => void onSubmit(e)}
      noValidate
      aria-labelledby="new-ticket-title"
    >
      <h2 id="new-ticket-title">New ticket</h2>
      <label htmlFor="ticket-subject">Subject</label>
      <input
        id="ticket-subject"
        value={subject}
        maxLength={SUBJECT_MAX + 50}
        onChange={(e) => setSubject(e.target.value)}
        aria-invalid={errors.subject ? true : undefined}
        aria-describedby={errors.subject ? "subject-error" : undefined}
      />
      {errors.subject && (
        <p id="subject-error" className="field-error">
          {errors.subject}
        </p>
      )}
      <label htmlFor="ticket-description">Description</label>
      <textarea
        id="ticket-description"
        rows={4}
        value={description}
        onChange={(e) => setDescription(e.target.value)}
        aria-invalid={errors.description ? true : undefined}
        aria-describedby={errors.description ? "description-error" : undefined}
      />
      {errors.description && (
        <p id="description-error" className="field-error">
          {errors.description}
        </p>
      )}
      {mayPrioritise && (
        <>
          <label htmlFor="ticket-priority">Priority</label>
          <select
            id="ticket-priority"
            value={priority}
            onChange={(e) => setPriority(e.target.value as Priority)}
          >
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {PRIORITY_LABELS[p]}
              </option>
            ))}
          </select>
        </>
      )}
      {errors.priority && <p className="field-error">{errors.priority}</p>}
      <FileDrop
        items={uploads.items}
        onAdd={uploads.add}
        onRemove={uploads.remove}
        disabled={create.isPending}
      />
      {created && uploads.items.some((item) => item.state === "failed") && (
        <p className="muted small" role="status">
          The ticket was created. Remove or replace the refused files and press the button again, or{" "}
          <button
            type="button"
            className="link-button"
            onClick={() => {
              const result = created;
              setCreated(null);
              uploads.clear();
              onCreated(result);
            }}
          >
            open the ticket without them
          </button>
          .
        </p>
      )}
      {errors.form && (
        <p className="field-error" role="alert">
          {errors.form}
        </p>
      )}
      <button type="submit" disabled={create.isPending || uploading}>
        {create.isPending
          ? "Creating…"
          : uploading
            ? "Uploading…"
            : created
              ? "Attach the files"
              : "Create ticket"}
      </button>
    </form>
  );
}
