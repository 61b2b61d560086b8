import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { tokens } from "../lib/api";
import { AGENT, CUSTOMER, FakeSocket, json, mockFetch, renderApp } from "../test/utils";
import { AgentDashboard } from "./agent/AgentDashboard";
import { SignInPage } from "./auth/SignInPage";
import { NotificationCentre, describeNotification } from "./notifications/NotificationCentre";
import { SearchPage, Snippet } from "./search/SearchPage";
import { render } from "@testing-library/react";

beforeEach(() => {
  FakeSocket.all = [];
});
afterEach(() => vi.unstubAllGlobals());

const EMPTY_PAGE = { next: null, previous: null, results: [] };

describe("sign-in", () => {
  it("offers the demo sign-in in demo mode, asking for the refresh cookie", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/providers": () => ({ demo: true, providers: [] }),
      "POST /api/auth/demo-login": (req) =>
        (req.body as { email: string }).email === "maria@acme.test"
          ? { access: "a", token_type: "Bearer", expires_in: 600 }
          : json({}, 400),
    });
    renderApp(<SignInPage />, { me: null });
    await userEvent.click(await screen.findByRole("button", { name: "Sign in" }));
    expect(screen.getByRole("alert")).toHaveTextContent("Enter an e-mail address.");
    await userEvent.type(screen.getByLabelText("E-mail"), "maria@acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(tokens.access).toBe("a"));
    const signIn = calls.find((c) => c.path === "/api/auth/demo-login");
    expect(signIn?.body).toEqual({ email: "maria@acme.test", cookie: true });
    expect({ ...localStorage }).toEqual({ "deskstream.session": "1" });
  });

  it("shows social providers and no demo form outside demo mode", async () => {
    mockFetch({ "GET /api/auth/providers": () => ({ demo: false, providers: [{ id: "gh", name: "GitHub", url: "/auth/gh" }] }) });
    renderApp(<SignInPage />, { me: null });
    expect(await screen.findByRole("link", { name: "Continue with GitHub" })).toHaveAttribute("href", "/auth/gh");
    expect(screen.queryByLabelText("E-mail")).not.toBeInTheDocument();
  });
});

describe("agent dashboard", () => {
  it("lists the queue and the unassigned tickets, refetches on queue frames, toggles availability with rollback", async () => {
    let unassigned = 0;
    const { calls } = mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/agents/workload": () => [{ user_id: "2", name: "Ada Lovelace", availability: "online", capacity: 5, skills: [], languages: [], open_tickets: 0 }],
      "GET /api/tickets": (req) => {
        if (!req.url.includes("agent=none")) return EMPTY_PAGE;
        unassigned += 1;
        return unassigned === 1 ? EMPTY_PAGE : { ...EMPTY_PAGE, results: [{ id: "t9", subject: "Brand new", status: "open", priority: "low", updated_at: "2026-11-26T10:00:00Z", assigned_agent_id: null }] };
      },
      "POST /api/agents/me/availability": () => json({ error: "conflict", detail: "Try again" }, 409),
    });
    renderApp(<AgentDashboard />, { me: AGENT });
    expect(await screen.findByRole("heading", { name: /My queue/ })).toBeInTheDocument();
    await waitFor(() => expect(screen.getAllByText("Nothing here.")).toHaveLength(2));
    expect(calls.some((c) => c.url.includes("agent=2") && c.url.includes("status=open%2Cassigned%2Cin_progress%2Cwaiting_on_customer"))).toBe(true);

    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: "ready", user_id: "2", role: "agent", expires_at: 0, position: 10 });
    await waitFor(() => expect(socket.sent).toContainEqual({ type: "subscribe", stream: "queue", after_position: 10 }));
    socket.receive({ type: "event", sub: "queue", stream: "queue", kind: "ticket_created", ticket_id: "t9", version: 1, position: 11, time: "", data: { subject: "Brand new" } });
    expect(await screen.findByRole("link", { name: "Brand new" })).toBeInTheDocument();
    expect(screen.getByText(/New ticket: Brand new/)).toBeInTheDocument();

    socket.receive({ type: "presence_snapshot", agents: [{ type: "presence", user_id: "3", name: "Bob", availability: "away", connected: true, state: "away" }] });
    expect(await screen.findByText("Bob")).toBeInTheDocument();

    const away = screen.getByRole("radio", { name: "Away" });
    await userEvent.click(away);
    expect(await screen.findByText(/Availability not changed/)).toBeInTheDocument();
    await waitFor(() => expect(screen.getByRole("radio", { name: "Online" })).toBeChecked());
  });
});

describe("notifications", () => {
  it("counts unread, lists them, and marks all read", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      "GET /api/notifications": () => ({
        ...EMPTY_PAGE,
        unread_count: 1,
        results: [{ id: "n1", kind: "public_reply", ticket_id: "t1", read: false, created_at: "2026-11-26T10:00:00Z", position: 5, payload: { ticket_subject: "Printer", excerpt: "Which one?" } }],
      }),
      "POST /api/notifications/read-all": () => ({ marked: 1, unread_count: 0 }),
    });
    renderApp(<NotificationCentre />, { me: CUSTOMER });
    expect(await screen.findByTestId("unread-count")).toHaveTextContent("1");
    await userEvent.click(screen.getByRole("button", { name: /Notifications/ }));
    expect(screen.getByRole("link", { name: "New reply on “Printer”: Which one?" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Mark all read" }));
    expect(calls.some((c) => c.path === "/api/notifications/read-all")).toBe(true);
  });

  it("describes every kind", () => {
    expect(describeNotification({ kind: "status_changed", payload: { ticket_subject: "X", to_status: "resolved" } })).toBe("“X” is now Resolved");
    expect(describeNotification({ kind: "assigned", payload: {} })).toBe("a ticket was assigned to you");
  });
});

describe("search", () => {
  it("groups results by tickets, messages and customers", async () => {
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/search": (req) => {
        expect(req.url).toContain("q=printer");
        const hit = (id: string, title: string) => ({ id, ticket_id: id === "c1" ? null : "t1", customer_id: "5", title, snippet: "the <mark>printer</mark> &amp; more", internal: false, status: null, priority: null, occurred_at: null });
        return { query: "printer", groups: { tickets: { count: 1, count_exact: true, results: [hit("t1", "Printer on fire")] }, messages: { count: 1000, count_exact: false, results: [] }, customers: { count: 1, count_exact: true, results: [hit("c1", "Maria")] } } };
      },
    });
    renderApp(<SearchPage />, { me: AGENT, route: "/search?q=printer" });
    expect(await screen.findByRole("link", { name: "Printer on fire" })).toBeInTheDocument();
    expect(screen.getByTestId("search-messages")).toHaveTextContent("No messages found.");
    // A count that stopped at the ranking cap reads as a lower bound.
    expect(screen.getByTestId("search-messages")).toHaveTextContent("Messages 1,000+");
    expect(screen.getByTestId("search-tickets")).toHaveTextContent("Tickets 1");
    expect(screen.getByTestId("search-customers")).toHaveTextContent("Maria");
  });

  it("keeps only text and <mark> from snippets", () => {
    const { container } = render(<Snippet html={'a <mark>b</mark> &lt;script&gt;x&lt;/script&gt; <img src=x onerror=alert(1)>'} />);
    expect(container.querySelectorAll("mark")).toHaveLength(1);
    expect(container.querySelector("img")).toBeNull();
    expect(container.textContent).toBe("a b <script>x</script> <img src=x onerror=alert(1)>");
  });
});
