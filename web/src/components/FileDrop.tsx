// Choose files by dropping them here or with the file picker; shows each chosen file with
// a preview (images), its upload progress and, when refused, why.

import { useId, useState, type DragEvent } from "react";
import type { UploadItem } from "../api/attachments";
import { formatSize } from "../lib/format";

export function FileDrop({
  items,
  onAdd,
  onRemove,
  disabled = false,
  label = "Attachments",
}: {
  items: UploadItem[];
  onAdd: (files: File[]) => void;
  onRemove: (key: string) => void;
  disabled?: boolean;
  label?: string;
}) {
  const inputId = useId();
  const [over, setOver] = useState(false);

  function onDrop(e: DragEvent<HTMLDivElement>) {
    e.preventDefault();
    setOver(false);
    if (disabled) return;
    const files = Array.from(e.dataTransfer?.files ?? []);
    if (files.length) onAdd(files);
  }

  return (
    <div className="file-drop-wrap">
      <div
        className={`file-drop${over ? " file-drop-over" : ""}`}
        data-testid="file-drop"
        onDragOver={(e) => {
          e.preventDefault();
          if (!disabled) setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <label htmlFor={inputId}>{label}</label>
        <input
          id={inputId}
          type="file"
          multiple
          disabled={disabled}
          onChange={(e) => {
            const files = Array.from(e.target.files ?? []);
            if (files.length) onAdd(files);
            e.target.value = "";
          }}
        />
        <p className="muted small">
          Drop files here or choose them. Every file is scanned for viruses before anyone can open
          it.
        </p>
      </div>
      {items.length > 0 && (
        <ul className="upload-list" aria-label="Files to upload">
          {items.map((item) => (
            <li key={item.key} className={`upload upload-${item.state}`}>
              {item.preview && (
                <img
                  className="attachment-preview"
                  src={item.preview}
                  alt={`Preview of ${item.file.name}`}
                />
              )}
              <span>
                {item.file.name} <span className="muted">({formatSize(item.file.size)})</span>
              </span>
              {item.state === "uploading" && (
                <progress
                  max={1}
                  value={item.progress}
                  aria-label={`Uploading ${item.file.name}`}
                />
              )}
              {item.state === "done" && <span className="muted">Uploaded, scanning…</span>}
              {item.state === "failed" && (
                <span className="field-error" role="alert">
                  {item.error}
                </span>
              )}
              {item.state !== "uploading" && item.state !== "done" && (
                <button
                  type="button"
                  className="secondary small"
                  onClick={() => onRemove(item.key)}
                  aria-label={`Remove ${item.file.name}`}
                >
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
