import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AGENT, FakeSocket, json, mockFetch, renderApp } from "../../test/utils";
import { AgentDashboard } from "./AgentDashboard";

beforeEach(() => {
  FakeSocket.all = [];
});
afterEach(() => vi.unstubAllGlobals());

const EMPTY_PAGE = { next: null, previous: null, results: [] };

describe("agent dashboard", () => {
  it("lists the queue and the unassigned tickets, refetches on queue frames, toggles availability with rollback", async () => {
    let unassigned = 0;
    const { calls } = mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/agents/workload": () => [
        {
          user_id: "2",
          name: "Ada Lovelace",
          availability: "online",
          capacity: 5,
          skills: [],
          languages: [],
          open_tickets: 0,
        },
      ],
      "GET /api/tickets": (req) => {
        if (!req.url.includes("agent=none")) return EMPTY_PAGE;
        unassigned += 1;
        return unassigned === 1
          ? EMPTY_PAGE
          : {
              ...EMPTY_PAGE,
              results: [
                {
                  id: "t9",
                  subject: "Brand new",
                  status: "open",
                  priority: "low",
                  updated_at: "2026-11-26T10:00:00Z",
                  assigned_agent_id: null,
                },
              ],
            };
      },
      "POST /api/agents/me/availability": () =>
        json({ error: "conflict", detail: "Try again" }, 409),
    });
    renderApp(<AgentDashboard />, { me: AGENT });
    expect(await screen.findByRole("heading", { name: /My queue/ })).toBeInTheDocument();
    await waitFor(() => expect(screen.getAllByText("Nothing here.")).toHaveLength(2));
    expect(
      calls.some(
        (c) =>
          c.url.includes("agent=2") &&
          c.url.includes("status=open%2Cassigned%2Cin_progress%2Cwaiting_on_customer"),
      ),
    ).toBe(true);

    const socket = FakeSocket.ready("2", "agent", 10);
    await waitFor(() =>
      expect(socket.sent).toContainEqual({
        type: "subscribe",
        stream: "queue",
        after_position: 10,
      }),
    );
    act(() =>
      socket.receive({
        type: "event",
        sub: "queue",
        stream: "queue",
        kind: "ticket_created",
        ticket_id: "t9",
        version: 1,
        position: 11,
        time: "",
        data: { subject: "Brand new" },
      }),
    );
    expect(await screen.findByRole("link", { name: "Brand new" })).toBeInTheDocument();
    expect(screen.getByText(/New ticket: Brand new/)).toBeInTheDocument();

    act(() =>
      socket.receive({
        type: "presence_snapshot",
        agents: [
          {
            type: "presence",
            user_id: "3",
            name: "Bob",
            availability: "away",
            connected: true,
            state: "away",
          },
        ],
      }),
    );
    expect(await screen.findByText("Bob")).toBeInTheDocument();

    const away = screen.getByRole("radio", { name: "Away" });
    await userEvent.click(away);
    expect(await screen.findByText(/Availability not changed/)).toBeInTheDocument();
    await waitFor(() => expect(screen.getByRole("radio", { name: "Online" })).toBeChecked());
  });

  it("asks before going offline, and the toggle waits for the workload that says what moves", async () => {
    let release: () => void = () => undefined;
    const workload = new Promise<void>((resolve) => {
      release = resolve;
    });
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/agents/workload": async () => {
        await workload;
        return [
          {
            user_id: "2",
            name: "Ada Lovelace",
            availability: "online",
            capacity: 5,
            skills: [],
            languages: [],
            open_tickets: 1,
          },
        ];
      },
      "GET /api/tickets": () => EMPTY_PAGE,
    });
    renderApp(<AgentDashboard />, { me: AGENT });
    const offline = await screen.findByRole("radio", { name: "Offline" });
    // Its open tickets unknown, the agent cannot go offline unwarned.
    expect(offline).toBeDisabled();
    act(() => release());
    await waitFor(() => expect(offline).toBeEnabled());
    await userEvent.click(offline);
    expect(await screen.findByTestId("offline-warning")).toHaveTextContent(
      "Your 1 open ticket will move to other agents.",
    );
    expect(screen.getByRole("radio", { name: "Online" })).toBeChecked();
  });
});
