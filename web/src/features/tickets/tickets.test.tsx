import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AGENT, CUSTOMER, FakeSocket, json, mockFetch, renderApp } from "../../test/utils";
import type { Message, Ticket } from "../../lib/types";
import { CreateTicketForm } from "./CreateTicketForm";
import { TicketDetail } from "./TicketDetail";

const TICKET: Ticket = {
  id: "11111111-2222-3333-4444-555555555555",
  customer_id: "5",
  subject: "Printer on fire",
  description: "Smoke everywhere",
  status: "in_progress",
  priority: "high",
  tags: [],
  language: "en",
  assigned_agent_id: "2",
  version: 4,
  position: 40,
  created_at: "2026-11-26T10:00:00Z",
  updated_at: "2026-11-26T10:05:00Z",
  last_message_at: null,
  resolved_at: null,
  closed_at: null,
  message_count: 0,
  sla_first_response_due: null,
  sla_resolution_due: null,
  attachments: [],
  satisfaction_rating: null,
  satisfaction_comment: "",
  satisfaction_at: null,
};

function message(version: number, body: string, extra: Partial<Message> = {}): Message {
  return {
    id: `m${version}`,
    version,
    author_id: "5",
    author_role: "customer",
    body,
    internal: false,
    attachments: [],
    posted_at: "2026-11-26T10:01:00Z",
    ...extra,
  };
}

beforeEach(() => {
  FakeSocket.all = [];
});
afterEach(() => vi.unstubAllGlobals());

describe("CreateTicketForm", () => {
  it("validates on the client before sending anything", async () => {
    const { calls } = mockFetch({ "GET /api/auth/me": () => CUSTOMER });
    renderApp(<CreateTicketForm onCreated={() => undefined} />);
    await userEvent.click(screen.getByRole("button", { name: "Create ticket" }));
    expect(screen.getByText("Enter a subject.")).toBeInTheDocument();
    expect(screen.getByLabelText("Subject")).toHaveAttribute("aria-invalid", "true");
    expect(calls.filter((c) => c.path === "/api/tickets")).toHaveLength(0);
    expect(screen.getByLabelText("Attachments")).toBeEnabled();
  });

  it("shows the server's field errors beside the fields", async () => {
    mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      "POST /api/tickets": () =>
        json({ error: "invalid", detail: "x", fields: { subject: ["Server says no."] } }, 400),
    });
    const created = vi.fn();
    renderApp(<CreateTicketForm onCreated={created} />);
    await userEvent.type(screen.getByLabelText("Subject"), "Hello");
    await userEvent.click(screen.getByRole("button", { name: "Create ticket" }));
    expect(await screen.findByText("Server says no.")).toBeInTheDocument();
    expect(created).not.toHaveBeenCalled();
  });

  it("sends a customer's subject and description, no priority unless allowed", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      "POST /api/tickets": () => json({ id: "t1", version: 1, position: 7 }, 201),
    });
    const created = vi.fn();
    renderApp(<CreateTicketForm onCreated={created} />);
    await userEvent.type(screen.getByLabelText("Subject"), "Printer on fire");
    await userEvent.type(screen.getByLabelText("Description"), "Smoke");
    expect(screen.queryByLabelText("Priority")).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Create ticket" }));
    await waitFor(() => expect(created).toHaveBeenCalled());
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({
      subject: "Printer on fire",
      description: "Smoke",
    });
  });

  it("sends subject, description and priority when the user may set it", async () => {
    const allowed = { ...CUSTOMER, may_set_priority: true };
    const { calls } = mockFetch({
      "GET /api/auth/me": () => allowed,
      "POST /api/tickets": () => json({ id: "t1", version: 1, position: 7 }, 201),
    });
    const created = vi.fn();
    renderApp(<CreateTicketForm onCreated={created} />, { me: allowed });
    await userEvent.type(screen.getByLabelText("Subject"), "Printer on fire");
    await userEvent.type(screen.getByLabelText("Description"), "Smoke");
    await userEvent.selectOptions(screen.getByLabelText("Priority"), "urgent");
    await userEvent.click(screen.getByRole("button", { name: "Create ticket" }));
    await waitFor(() =>
      expect(created).toHaveBeenCalledWith({ id: "t1", version: 1, position: 7 }),
    );
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({
      subject: "Printer on fire",
      description: "Smoke",
      priority: "urgent",
    });
  });
});

describe("TicketDetail", () => {
  function fakeApi(messages: Message[], post: () => unknown, me = AGENT) {
    // The thread grows with what the server says is new (a stale reply's newer messages).
    const thread = [...messages];
    const handle = async () => {
      const out = await post();
      if (out instanceof Response && out.status === 409) {
        const body = (await out.clone().json()) as { messages?: Message[] };
        thread.push(...(body.messages ?? []));
      }
      return out;
    };
    return mockFetch({
      "GET /api/auth/me": () => me,
      [`GET /api/tickets/${TICKET.id}`]: () => TICKET,
      [`GET /api/tickets/${TICKET.id}/messages`]: () => ({
        next: null,
        previous: null,
        results: thread,
      }),
      "GET /api/agents/workload": () => [
        {
          user_id: "2",
          name: "Ada Lovelace",
          availability: "online",
          capacity: 5,
          skills: [],
          languages: [],
          open_tickets: 1,
        },
      ],
      [`POST /api/tickets/${TICKET.id}/messages`]: handle,
    });
  }

  it("shows internal notes apart from public replies", async () => {
    fakeApi(
      [
        message(2, "Hello"),
        message(3, "VIP", { internal: true, author_id: "2", author_role: "agent" }),
      ],
      () => ({}),
    );
    renderApp(<TicketDetail ticketId={TICKET.id} />, { me: AGENT });
    expect(await screen.findByText("VIP")).toBeInTheDocument();
    const note = screen.getByTestId("internal-note");
    expect(within(note).getByText("Internal note")).toBeInTheDocument();
    expect(note).toHaveClass("bubble-internal");
    expect(screen.getByTestId("public-message")).not.toHaveClass("bubble-internal");
    expect(screen.getByTestId("status-badge")).toHaveTextContent("In progress");
  });

  it("shows a reply at once and takes it back when the server refuses", async () => {
    let release: (r: Response) => void = () => undefined;
    fakeApi([message(2, "Hello")], () => new Promise<Response>((resolve) => (release = resolve)));
    renderApp(<TicketDetail ticketId={TICKET.id} />, { me: AGENT });
    await screen.findByText("Hello");
    await userEvent.type(screen.getByLabelText("Reply"), "On my way");
    await userEvent.click(screen.getByRole("button", { name: "Send reply" }));
    expect(await screen.findByText("On my way")).toBeInTheDocument();
    expect(screen.getByText("Sending…")).toBeInTheDocument();
    release(json({ error: "conflict", detail: "Try again" }, 409));
    await waitFor(() => expect(screen.queryByText("Sending…")).not.toBeInTheDocument());
    expect(screen.getAllByTestId("public-message")).toHaveLength(1);
    expect(await screen.findByText(/Not sent: Try again/)).toBeInTheDocument();
    expect(screen.getByLabelText("Reply")).toHaveValue("On my way"); // the draft is kept
  });

  it("warns about a stale reply, shows what changed and sends with the new version", async () => {
    const ifMatch: string[] = [];
    let first = true;
    fakeApi([message(2, "Hello")], () => {
      if (first) {
        first = false;
        return json(
          {
            error: "stale_reply",
            detail: "newer",
            current_version: 6,
            messages: [message(6, "It is the big one")],
          },
          409,
        );
      }
      return json({ id: TICKET.id, version: 7, position: 9 }, 201);
    });
    const { calls } = {
      calls: (globalThis.fetch as unknown as { mock: { calls: [string, RequestInit][] } }).mock
        .calls,
    };
    renderApp(<TicketDetail ticketId={TICKET.id} />, { me: AGENT });
    await screen.findByText("Hello");
    await userEvent.type(screen.getByLabelText("Reply"), "Which printer?");
    await userEvent.click(screen.getByRole("button", { name: "Send reply" }));
    expect(await screen.findByTestId("stale-warning")).toHaveTextContent(
      "The ticket changed while you were writing",
    );
    expect(screen.getByText("It is the big one")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Send reply" }));
    await waitFor(() => expect(screen.queryByTestId("stale-warning")).not.toBeInTheDocument());
    for (const [url, init] of calls) {
      if (String(url).endsWith("/messages") && init?.method === "POST")
        ifMatch.push((init.headers as Record<string, string>)["If-Match"]!);
    }
    expect(ifMatch).toEqual(['"4"', '"6"']);
  });

  it("applies live frames: new messages, status changes and typing", async () => {
    fakeApi([message(2, "Hello")], () => ({}), CUSTOMER);
    renderApp(<TicketDetail ticketId={TICKET.id} />, { me: CUSTOMER });
    await screen.findByText("Hello");
    const socket = FakeSocket.ready("5", "customer", 10);
    await waitFor(() =>
      expect(socket.sent).toContainEqual({
        type: "subscribe",
        stream: "ticket",
        ticket_id: TICKET.id,
        after_version: 4,
      }),
    );
    const sub = `ticket:${TICKET.id}`;
    act(() =>
      socket.receive({
        type: "typing",
        sub,
        ticket_id: TICKET.id,
        user_id: "2",
        role: "agent",
        name: "Ada",
        internal: false,
      }),
    );
    expect(await screen.findByText("Ada is typing…")).toBeInTheDocument();
    act(() =>
      socket.receive({
        type: "event",
        sub,
        stream: "ticket",
        kind: "message_posted",
        ticket_id: TICKET.id,
        version: 5,
        position: 11,
        time: "2026-11-26T10:06:00Z",
        data: {
          message_id: "m5",
          author_id: "2",
          author_role: "agent",
          body: "Which printer?",
          internal: false,
          attachments: [],
          posted_at: "2026-11-26T10:06:00Z",
        },
      }),
    );
    act(() =>
      socket.receive({
        type: "event",
        sub,
        stream: "ticket",
        kind: "status_changed",
        ticket_id: TICKET.id,
        version: 6,
        position: 12,
        time: "2026-11-26T10:07:00Z",
        data: {
          from_status: "in_progress",
          to_status: "waiting_on_customer",
          reason: "",
          actor_id: "2",
          actor_role: "agent",
        },
      }),
    );
    expect(await screen.findByText("Which printer?")).toBeInTheDocument();
    expect(screen.getByTestId("status-badge")).toHaveTextContent("Waiting on customer");
    expect(screen.getByRole("button", { name: "1 new message" })).toBeInTheDocument();
    expect(screen.queryByText("Ada is typing…")).not.toBeInTheDocument();
  });

  it("shows a not-found error with retry for a ticket the user may not see", async () => {
    mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      [`GET /api/tickets/${TICKET.id}`]: () =>
        json({ error: "not_found", detail: "No such ticket." }, 404),
    });
    renderApp(<TicketDetail ticketId={TICKET.id} />, { me: CUSTOMER });
    expect(await screen.findByRole("alert")).toHaveTextContent("Not found");
    expect(screen.getByRole("button", { name: "Retry" })).toBeInTheDocument();
  });
});
