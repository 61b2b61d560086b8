// Attachment uploads: multipart over XMLHttpRequest (fetch cannot report upload progress),
// with the same bearer token, single-flight refresh and ApiError as every other request.

import { useCallback, useState } from "react";
import { ApiError, notePosition, refreshTokens, tokens } from "../lib/api";
import type { UploadResult } from "../lib/types";

export type { UploadResult };

export interface UploadOptions {
  messageId?: string;
  internal?: boolean;
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
}

function send(
  ticketId: string,
  file: File,
  options: UploadOptions,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/tickets/${ticketId}/attachments`);
    xhr.setRequestHeader("Accept", "application/json");
    if (tokens.access) xhr.setRequestHeader("Authorization", `Bearer ${tokens.access}`);
    xhr.upload.onprogress = (e: ProgressEvent) => {
      if (e.lengthComputable && e.total > 0) options.onProgress?.(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: Record<string, unknown>;
      try {
        body = xhr.responseText ? (JSON.parse(xhr.responseText) as Record<string, unknown>) : {};
      } catch {
        body = { error: "bad_response", detail: xhr.responseText.slice(0, 200) };
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new TypeError("The server could not be reached."));
    xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
    options.signal?.addEventListener("abort", () => xhr.abort());
    const form = new FormData();
    form.append("file", file, file.name);
    if (options.messageId) form.append("message_id", options.messageId);
    if (options.internal) form.append("internal", "true");
    xhr.send(form);
  });
}

/** Upload one file to a ticket (or, with `messageId`, to one of your messages). */
export async function uploadAttachment(
  ticketId: string,
  file: File,
  options: UploadOptions = {},
): Promise<UploadResult> {
  let answer = await send(ticketId, file, options);
  if (answer.status === 401 && answer.body.error === "token_expired" && (await refreshTokens())) {
    answer = await send(ticketId, file, options);
  }
  if (answer.status < 200 || answer.status >= 300) {
    throw new ApiError(
      answer.status,
      text(answer.body.error, `http_${answer.status}`),
      text(answer.body.detail, "Upload failed"),
      answer.body,
    );
  }
  const result = answer.body as unknown as UploadResult;
  notePosition(result.position);
  options.onProgress?.(1);
  return result;
}

/** What to tell the user when a file was refused. */
export function uploadErrorMessage(name: string, error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === "attachment_too_large") {
      const max = Number(error.body.max_bytes);
      return Number.isFinite(max) && max > 0
        ? `“${name}” is too big: files can be at most ${formatMegabytes(max)}.`
        : `“${name}” is too big.`;
    }
    if (error.code === "attachment_type_refused") {
      const type = text(error.body.content_type, "");
      const found = type ? ` (it is ${type})` : "";
      return `“${name}” is a type of file we do not accept${found}. Images, PDF, text and ZIP files are fine.`;
    }
    if (error.code === "too_many_attachments") {
      return `“${name}” was not attached: ${error.message}`;
    }
    if (error.code === "invalid" && error.message.includes("empty")) {
      return `“${name}” is empty.`;
    }
    return `“${name}” was not attached: ${error.message}`;
  }
  if (error instanceof TypeError)
    return `“${name}” was not attached: the server could not be reached.`;
  return `“${name}” was not attached.`;
}

function text(value: unknown, fallback: string): string {
  return typeof value === "string" ? value : fallback;
}

function formatMegabytes(bytes: number): string {
  const mb = bytes / 1024 / 1024;
  return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
}

export interface UploadItem {
  key: string;
  file: File;
  /** A local preview (object URL) for images, before and while they upload. */
  preview: string | null;
  progress: number;
  state: "queued" | "uploading" | "done" | "failed";
  error?: string;
  result?: UploadResult;
}

let nextKey = 0;

export function uploadItem(file: File): UploadItem {
  const preview =
    file.type.startsWith("image/") && typeof URL.createObjectURL === "function"
      ? URL.createObjectURL(file)
      : null;
  nextKey += 1;
  return { key: `upload-${nextKey}`, file, preview, progress: 0, state: "queued" };
}

export type Upload = typeof uploadAttachment;

/** Files chosen for a ticket or message, and their uploads: `add` queues files, `run`
 * uploads the queued ones one after the other (progress per file) and resolves with the
 * items once every one has finished or failed. */
export function useUploads(upload: Upload = uploadAttachment) {
  const [items, setItems] = useState<UploadItem[]>([]);

  const patch = useCallback((key: string, change: Partial<UploadItem>) => {
    setItems((all) => all.map((item) => (item.key === key ? { ...item, ...change } : item)));
  }, []);

  const add = useCallback((files: Iterable<File>) => {
    setItems((all) => [...all, ...Array.from(files, uploadItem)]);
  }, []);

  const remove = useCallback((key: string) => {
    setItems((all) => {
      const gone = all.find((item) => item.key === key);
      if (gone?.preview) URL.revokeObjectURL?.(gone.preview);
      return all.filter((item) => item.key !== key);
    });
  }, []);

  const clear = useCallback(() => {
    setItems((all) => {
      all.forEach((item) => item.preview && URL.revokeObjectURL?.(item.preview));
      return [];
    });
  }, []);

  const run = useCallback(
    async (
      ticketId: string,
      queued: UploadItem[],
      options: Omit<UploadOptions, "onProgress"> = {},
    ): Promise<UploadItem[]> => {
      const finished: UploadItem[] = [];
      for (const item of queued.filter((i) => i.state !== "done")) {
        patch(item.key, { state: "uploading", progress: 0, error: undefined });
        try {
          const result = await upload(ticketId, item.file, {
            ...options,
            onProgress: (progress) => patch(item.key, { progress }),
          });
          patch(item.key, { state: "done", progress: 1, result });
          finished.push({ ...item, state: "done", progress: 1, result });
        } catch (error) {
          const message = uploadErrorMessage(item.file.name, error);
          patch(item.key, { state: "failed", error: message });
          finished.push({ ...item, state: "failed", error: message });
        }
      }
      return finished;
    },
    [patch, upload],
  );

  return { items, add, remove, clear, run };
}
