import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  uploadAttachment,
  uploadErrorMessage,
  type Upload,
  type UploadOptions,
  type UploadResult,
} from "../../api/attachments";
import { AttachmentList } from "../../components/AttachmentList";
import { ApiError, tokens } from "../../lib/api";
import type { Ticket, TicketFile } from "../../lib/types";
import { AGENT, CUSTOMER, json, mockFetch, renderApp } from "../../test/utils";
import { CreateTicketForm } from "./CreateTicketForm";
import { TicketDetail } from "./TicketDetail";

afterEach(() => vi.unstubAllGlobals());

const TICKET: Ticket = {
  id: "11111111-2222-3333-4444-555555555555",
  customer_id: "5",
  subject: "Printer on fire",
  description: "",
  status: "open",
  priority: "medium",
  tags: [],
  language: "en",
  assigned_agent_id: null,
  version: 3,
  position: 30,
  message_count: 0,
  created_at: "2026-11-26T10:00:00Z",
  updated_at: "2026-11-26T10:05:00Z",
  last_message_at: null,
  resolved_at: null,
  closed_at: null,
  attachments: [],
  satisfaction_rating: null,
  satisfaction_comment: "",
  satisfaction_at: null,
};

function file(name: string, type: string, size = 10): File {
  return new File(["x".repeat(size)], name, { type });
}

function accepted(ticketId: string): UploadResult {
  return {
    id: ticketId,
    version: 2,
    position: 9,
    attachment_id: "a1",
    content_type: "image/png",
    status: "scanning",
  };
}

/** An upload whose progress and answer the test controls. */
function controlledUpload() {
  const calls: { ticketId: string; file: File; options: UploadOptions }[] = [];
  let finish: (outcome: UploadResult | Error) => void = () => undefined;
  const upload: Upload = (ticketId, f, options = {}) => {
    calls.push({ ticketId, file: f, options });
    return new Promise((resolve, reject) => {
      finish = (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome));
    });
  };
  return {
    upload,
    calls,
    progress: (fraction: number) => calls.at(-1)?.options.onProgress?.(fraction),
    finish: (outcome: UploadResult | Error) => finish(outcome),
  };
}

function drop(target: HTMLElement, files: File[]) {
  fireEvent.dragOver(target, { dataTransfer: { files } });
  fireEvent.drop(target, { dataTransfer: { files } });
}

describe("AttachmentList", () => {
  const base: TicketFile = {
    id: "a",
    name: "shot.png",
    content_type: "image/png",
    size: 2048,
    message_id: null,
    internal: false,
    uploader_id: "5",
    uploader_role: "customer",
    uploaded_at: "2026-11-26T10:00:00Z",
    status: "clean",
    url: null,
    url_expires_at: null,
  };

  it("links and previews a clean image, never a scanning or infected file", () => {
    render(
      <AttachmentList
        attachments={[
          { ...base, id: "1", status: "clean", url: "/api/attachments/1?sig=s" },
          { ...base, id: "2", name: "late.pdf", status: "scanning", url: null },
          { ...base, id: "3", name: "eicar.txt", status: "infected", url: null },
        ]}
      />,
    );
    const list = screen.getByRole("list", { name: "Attachments" });
    const [clean, scanning, infected] = within(list).getAllByRole("listitem") as [
      HTMLElement,
      HTMLElement,
      HTMLElement,
    ];
    expect(within(clean).getByRole("link", { name: "shot.png" })).toHaveAttribute(
      "href",
      "/api/attachments/1?sig=s",
    );
    expect(within(clean).getByAltText("Preview of shot.png")).toHaveAttribute(
      "src",
      "/api/attachments/1?sig=s",
    );
    expect(within(scanning).getByText("Scanning for viruses…")).toBeInTheDocument();
    expect(within(scanning).queryByRole("link")).toBeNull();
    expect(within(infected).getByText(/found malware/)).toBeInTheDocument();
    expect(within(infected).queryByRole("link")).toBeNull();
  });
});

describe("uploadAttachment", () => {
  class FakeXhr {
    static last: FakeXhr;
    method = "";
    url = "";
    headers: Record<string, string> = {};
    body: FormData | null = null;
    status = 0;
    responseText = "";
    upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
    onload: (() => void) | null = null;
    onerror: (() => void) | null = null;
    onabort: (() => void) | null = null;
    constructor() {
      FakeXhr.last = this;
    }
    open(method: string, url: string) {
      this.method = method;
      this.url = url;
    }
    setRequestHeader(name: string, value: string) {
      this.headers[name] = value;
    }
    send(body: FormData) {
      this.body = body;
    }
    abort() {
      this.onabort?.();
    }
    answer(status: number, body: unknown) {
      this.status = status;
      this.responseText = JSON.stringify(body);
      this.onload?.();
    }
  }

  it("sends the file as multipart with the token and reports progress", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    tokens.set("tok");
    const seen: number[] = [];
    const pending = uploadAttachment("t1", file("a.png", "image/png"), {
      messageId: "m1",
      onProgress: (p) => seen.push(p),
    });
    const xhr = FakeXhr.last;
    expect([xhr.method, xhr.url]).toEqual(["POST", "/api/tickets/t1/attachments"]);
    expect(xhr.headers.Authorization).toBe("Bearer tok");
    expect((xhr.body?.get("file") as File).name).toBe("a.png");
    expect(xhr.body?.get("message_id")).toBe("m1");
    expect(xhr.body?.get("internal")).toBeNull();
    xhr.upload.onprogress?.({ lengthComputable: true, loaded: 5, total: 10 } as ProgressEvent);
    xhr.answer(201, accepted("t1"));
    expect((await pending).attachment_id).toBe("a1");
    expect(seen).toEqual([0.5, 1]);
  });

  it("turns a refusal into an ApiError with the server's body", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    const pending = uploadAttachment("t1", file("big.bin", ""));
    FakeXhr.last.answer(413, {
      error: "attachment_too_large",
      detail: "too big",
      max_bytes: 10485760,
    });
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(413);
    expect(uploadErrorMessage("big.bin", error)).toBe(
      "“big.bin” is too big: files can be at most 10 MB.",
    );
  });

  it("words each refusal for people", () => {
    const refused = new ApiError(415, "attachment_type_refused", "no", {
      content_type: "application/vnd.microsoft.portable-executable",
    });
    expect(uploadErrorMessage("setup.png", refused)).toMatch(
      /^“setup.png” is a type of file we do not accept \(it is application\/vnd.microsoft.portable-executable\)/,
    );
    const empty = new ApiError(400, "invalid", "file: The file is empty.");
    expect(uploadErrorMessage("e.txt", empty)).toBe("“e.txt” is empty.");
    expect(uploadErrorMessage("x.txt", new TypeError("fetch failed"))).toMatch(
      /server could not be reached/,
    );
  });
});

describe("CreateTicketForm with files", () => {
  it("uploads dropped files to the new ticket with progress, then opens it", async () => {
    mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      "POST /api/tickets": () => json({ id: "t9", version: 1, position: 7 }, 201),
    });
    const fake = controlledUpload();
    const created = vi.fn();
    renderApp(<CreateTicketForm onCreated={created} upload={fake.upload} />);
    await userEvent.type(screen.getByLabelText("Subject"), "Broken screen");
    drop(screen.getByTestId("file-drop"), [file("crack.png", "image/png", 2048)]);
    expect(screen.getByText("crack.png")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Create ticket" }));
    await waitFor(() => expect(fake.calls).toHaveLength(1));
    expect(fake.calls[0]?.ticketId).toBe("t9");
    act(() => fake.progress(0.4));
    const bar = await screen.findByLabelText("Uploading crack.png");
    await waitFor(() => expect(bar).toHaveAttribute("value", "0.4"));
    expect(screen.getByRole("button", { name: "Uploading…" })).toBeDisabled();
    act(() => fake.finish(accepted("t9")));
    await waitFor(() =>
      expect(created).toHaveBeenCalledWith({ id: "t9", version: 1, position: 7 }),
    );
  });

  it("says why a file was refused and keeps the form open", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      "POST /api/tickets": () => json({ id: "t9", version: 1, position: 7 }, 201),
    });
    const fake = controlledUpload();
    const created = vi.fn();
    renderApp(<CreateTicketForm onCreated={created} upload={fake.upload} />);
    await userEvent.type(screen.getByLabelText("Subject"), "Virus?");
    await userEvent.upload(
      screen.getByLabelText("Attachments"),
      file("setup.exe", "application/x-msdownload"),
    );
    await userEvent.click(screen.getByRole("button", { name: "Create ticket" }));
    await waitFor(() => expect(fake.calls).toHaveLength(1));
    act(() =>
      fake.finish(
        new ApiError(415, "attachment_type_refused", "no", {
          content_type: "application/x-dosexec",
        }),
      ),
    );
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "“setup.exe” is a type of file we do not accept",
    );
    expect(created).not.toHaveBeenCalled();
    // The ticket exists: removing the file and pressing again creates no second ticket.
    await userEvent.click(screen.getByRole("button", { name: "Remove setup.exe" }));
    await userEvent.click(screen.getByRole("button", { name: "Attach the files" }));
    await waitFor(() => expect(created).toHaveBeenCalledTimes(1));
    expect(calls.filter((c) => c.method === "POST" && c.path === "/api/tickets")).toHaveLength(1);
  });
});

describe("TicketDetail with files", () => {
  it("uploads a reply's files to the new message and lists ticket files by scan state", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me": () => AGENT,
      [`GET /api/tickets/${TICKET.id}`]: () => ({
        ...TICKET,
        attachments: [
          {
            id: "f1",
            name: "log.txt",
            content_type: "text/plain",
            size: 12,
            message_id: null,
            internal: false,
            uploader_id: "5",
            uploader_role: "customer",
            uploaded_at: "2026-11-26T10:00:00Z",
            status: "scanning",
            url: null,
            url_expires_at: null,
          },
        ],
      }),
      [`GET /api/tickets/${TICKET.id}/messages`]: () => ({
        next: null,
        previous: null,
        results: [],
      }),
      "GET /api/agents/workload": () => [],
      [`POST /api/tickets/${TICKET.id}/messages`]: () =>
        json({ id: TICKET.id, version: 4, position: 11, message_id: "msg-1" }, 201),
    });
    const fake = controlledUpload();
    renderApp(<TicketDetail ticketId={TICKET.id} upload={fake.upload} />, { me: AGENT });
    const files = await screen.findByRole("list", { name: "Ticket attachments" });
    expect(within(files).getByText("Scanning for viruses…")).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Reply"), "Here is the fix");
    await userEvent.upload(
      screen.getByLabelText("Attach files"),
      file("fix.pdf", "application/pdf"),
    );
    await userEvent.click(screen.getByRole("button", { name: "Send reply" }));
    await waitFor(() => expect(fake.calls).toHaveLength(1));
    expect(fake.calls[0]?.ticketId).toBe(TICKET.id);
    expect(fake.calls[0]?.options.messageId).toBe("msg-1");
    act(() => fake.finish(accepted(TICKET.id)));
    await waitFor(() => expect(screen.queryByText("fix.pdf")).not.toBeInTheDocument());
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(1);
  });
});
