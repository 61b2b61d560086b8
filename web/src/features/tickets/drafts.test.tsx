import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AGENT, FakeSocket, json, mockFetch, renderApp } from "../../test/utils";
import type { Draft } from "../../lib/types";
import { DraftPanel } from "./DraftPanel";

const TICKET = "11111111-2222-3333-4444-555555555555";
const DRAFT = "99999999-2222-3333-4444-555555555555";

function draft(extra: Partial<Draft> = {}): Draft {
  return {
    id: DRAFT,
    ticket_id: TICKET,
    requested_by: "2",
    requested_version: 4,
    language: "en",
    allow_internal: false,
    status: "ready",
    text: "Hi Maria, please restart it.",
    reason: "",
    source: "model",
    model: "gpt-test",
    sent_message_id: null,
    ...extra,
  };
}

function answer(d: Draft) {
  return json({ id: TICKET, version: 6, position: 60, draft: d }, 202);
}

beforeEach(() => {
  FakeSocket.all = [];
});
afterEach(() => vi.unstubAllGlobals());

describe("DraftPanel", () => {
  it("streams a draft, lets the agent edit it and insert it into the reply", async () => {
    let release: (r: Response) => void = () => undefined;
    const { calls } = mockFetch({
      "GET /api/auth/me": () => AGENT,
      [`POST /api/tickets/${TICKET}/drafts`]: () =>
        new Promise<Response>((resolve) => {
          release = resolve;
        }),
    });
    const inserted = vi.fn();
    renderApp(<DraftPanel ticketId={TICKET} onInsert={inserted} />, { me: AGENT });
    const socket = FakeSocket.ready("2", "agent", 9);
    await waitFor(() =>
      expect(socket.sent).toContainEqual({
        type: "subscribe",
        stream: "drafts",
        ticket_id: TICKET,
      }),
    );
    await userEvent.click(screen.getByRole("button", { name: "Generate draft" }));
    expect(screen.getByRole("status")).toHaveTextContent("Writing a draft…");
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ allow_internal: false });
    const sub = `drafts:${TICKET}`;
    const frame = { type: "draft", sub, ticket_id: TICKET, draft_id: DRAFT };
    act(() => socket.receive({ ...frame, kind: "started", source: "model", model: "gpt-test" }));
    act(() => socket.receive({ ...frame, kind: "delta", text: "Hi Maria, " }));
    expect(screen.getByTestId("draft-text")).toHaveValue("Hi Maria, ");
    act(() => socket.receive({ ...frame, kind: "delta", text: "please restart it." }));
    expect(screen.getByTestId("draft-text")).toHaveValue("Hi Maria, please restart it.");
    act(() => release(answer(draft())));
    expect(await screen.findByText("AI draft · gpt-test")).toBeInTheDocument();
    const box = screen.getByTestId("draft-text");
    await userEvent.type(box, " Thanks!");
    await userEvent.click(screen.getByRole("button", { name: "Insert into reply" }));
    expect(inserted).toHaveBeenCalledWith("Hi Maria, please restart it. Thanks!", DRAFT);
    expect(screen.getByRole("button", { name: "Regenerate" })).toBeEnabled();
  });

  it("keeps the agent's edit when the request's answer comes after the last frame", async () => {
    let release: (r: Response) => void = () => undefined;
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      [`POST /api/tickets/${TICKET}/drafts`]: () =>
        new Promise<Response>((resolve) => {
          release = resolve;
        }),
    });
    renderApp(<DraftPanel ticketId={TICKET} onInsert={vi.fn()} />, { me: AGENT });
    const socket = FakeSocket.ready("2", "agent", 9);
    await waitFor(() => expect(socket.sent.some((m) => m.stream === "drafts")).toBe(true));
    await userEvent.click(screen.getByRole("button", { name: "Generate draft" }));
    const frame = { type: "draft", sub: `drafts:${TICKET}`, ticket_id: TICKET, draft_id: DRAFT };
    act(() => socket.receive({ ...frame, kind: "started", source: "model", model: "gpt-test" }));
    act(() =>
      socket.receive({
        ...frame,
        kind: "finished",
        status: "ready",
        text: "Hi Maria, please restart it.",
        source: "model",
        model: "gpt-test",
      }),
    );
    const box = screen.getByTestId("draft-text");
    expect(box).toHaveValue("Hi Maria, please restart it.");
    await userEvent.type(box, " Thanks!");
    act(() => release(answer(draft())));
    await waitFor(() => expect(screen.getByRole("button", { name: "Regenerate" })).toBeEnabled());
    expect(box).toHaveValue("Hi Maria, please restart it. Thanks!");
  });

  it("labels retrieval drafts and explains a refusal", async () => {
    let status: Draft["status"] = "ready";
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      [`POST /api/tickets/${TICKET}/drafts`]: () =>
        answer(
          status === "ready"
            ? draft({ source: "retrieval", model: "retrieval-v1" })
            : draft({ status, text: "", reason: "It repeats an internal note." }),
        ),
    });
    renderApp(<DraftPanel ticketId={TICKET} onInsert={() => undefined} />, { me: AGENT });
    await userEvent.click(screen.getByRole("button", { name: "Generate draft" }));
    expect(await screen.findByText("From similar resolved tickets")).toBeInTheDocument();
    status = "refused";
    await userEvent.click(screen.getByRole("button", { name: "Regenerate" }));
    expect(await screen.findByTestId("draft-refusal")).toHaveTextContent(
      "No draft: It repeats an internal note.",
    );
    expect(screen.queryByRole("button", { name: "Insert into reply" })).not.toBeInTheDocument();
  });

  it("shows the rate limit", async () => {
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      [`POST /api/tickets/${TICKET}/drafts`]: () =>
        json(
          {
            error: "throttled",
            detail: "Request was throttled. Expected available in 42 seconds.",
          },
          429,
          { "Retry-After": "42" },
        ),
    });
    renderApp(<DraftPanel ticketId={TICKET} onInsert={() => undefined} />, { me: AGENT });
    await userEvent.click(screen.getByRole("button", { name: "Generate draft" }));
    expect(await screen.findByTestId("draft-limited")).toHaveTextContent(
      "Too many drafts for now. Request was throttled. Expected available in 42 seconds.",
    );
  });
});
