import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AGENT, CUSTOMER, mockFetch, renderApp } from "../../test/utils";
import type { Ticket } from "../../lib/types";
import { SatisfactionPanel, TicketEmails } from "./Satisfaction";

afterEach(() => vi.unstubAllGlobals());

const RESOLVED = {
  id: "t1",
  status: "resolved",
  satisfaction_rating: null,
  satisfaction_comment: "",
  satisfaction_at: null,
} as unknown as Ticket;

describe("satisfaction and e-mails (ADR 0047)", () => {
  it("lets the customer rate a resolved ticket with a comment", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      "POST /api/tickets/t1/satisfaction": () => ({ id: "t1", version: 9, position: 90 }),
    });
    renderApp(<SatisfactionPanel ticket={RESOLVED} isStaff={false} />, { me: CUSTOMER });
    const send = await screen.findByRole("button", { name: "Send rating" });
    expect(send).toBeDisabled();
    await userEvent.click(screen.getByRole("radio", { name: "4: Very good" }));
    await userEvent.type(screen.getByLabelText("Comment (optional)"), "Quick");
    await userEvent.click(send);
    await waitFor(() =>
      expect(calls.find((c) => c.method === "POST")?.body).toEqual({ rating: 4, comment: "Quick" }),
    );
  });

  it("shows staff the rating, and nothing before resolution", async () => {
    mockFetch({ "GET /api/auth/me": () => AGENT });
    const rated = { ...RESOLVED, satisfaction_rating: 2, satisfaction_comment: "Slow" } as Ticket;
    const { unmount } = renderApp(<SatisfactionPanel ticket={rated} isStaff />, { me: AGENT });
    expect(await screen.findByTestId("csat-value")).toHaveTextContent("Rated 2: Fair");
    expect(screen.getByTestId("csat-comment")).toHaveTextContent("Slow");
    expect(screen.queryByRole("button", { name: "Send rating" })).toBeNull();
    unmount();
    const open = { ...RESOLVED, status: "open" } as Ticket;
    renderApp(<SatisfactionPanel ticket={open} isStaff={false} />, { me: CUSTOMER });
    await waitFor(() => expect(screen.queryByText("How did we do?")).toBeNull());
  });

  it("lists the ticket's e-mails with their state", async () => {
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/tickets/t1/emails": () => ({
        ticket_id: "t1",
        results: [
          {
            id: 2,
            kind: "sla_reminder",
            recipient_id: "3",
            recipient_name: "Ada",
            recipient_email: "ada@example.test",
            status: "skipped",
            attempts: 1,
            created_at: "2026-12-06T10:00:00Z",
            sent_at: null,
            last_error: "the agent has not chosen SLA e-mails",
            position: 7,
          },
          {
            id: 1,
            kind: "status_changed",
            recipient_id: "5",
            recipient_name: "Maria",
            recipient_email: "maria@example.test",
            status: "sent",
            attempts: 1,
            created_at: "2026-12-06T09:00:00Z",
            sent_at: "2026-12-06T09:00:01Z",
            last_error: "",
            position: 6,
          },
        ],
      }),
    });
    renderApp(<TicketEmails ticketId="t1" />, { me: AGENT });
    const items = await screen.findAllByTestId("email-status");
    expect(items[0]).toHaveTextContent("Not sent: the agent has not chosen SLA e-mails");
    expect(items[1]).toHaveTextContent(/^Sent /);
    expect(screen.getByTestId("ticket-emails")).toHaveTextContent("SLA reminder to Ada");
  });
});
