import { screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { UseQueryResult } from "@tanstack/react-query";
import { AGENT, mockFetch, renderApp } from "../../test/utils";
import type { Customer, Ticket } from "../../lib/types";
import { CustomerSidebar } from "./CustomerSidebar";

const TICKET = {
  id: "11111111-2222-3333-4444-555555555555",
  customer_id: "5",
  subject: "Charged twice this month",
  status: "assigned",
} as Ticket;

function hit(ticketId: string, status: string) {
  return {
    id: ticketId,
    ticket_id: ticketId,
    customer_id: "6",
    title: "Charged twice this month",
    snippet: "",
    internal: false,
    status,
    priority: "high",
    assigned_agent_id: null,
    tags: [],
    created_at: null,
    updated_at: null,
    occurred_at: null,
  };
}

afterEach(() => vi.unstubAllGlobals());

describe("CustomerSidebar", () => {
  it("tells the customer's other tickets and similar ones apart by number and status", async () => {
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/tickets": () => ({
        results: [
          TICKET,
          { ...TICKET, id: "cccccccc-0000-0000-0000-000000000003", status: "closed" },
        ],
        next: null,
        previous: null,
        count: 2,
      }),
      [`GET /api/tickets/${TICKET.id}/similar`]: () => ({
        ticket_id: TICKET.id,
        results: [
          hit("aaaaaaaa-0000-0000-0000-000000000001", "resolved"),
          hit("bbbbbbbb-0000-0000-0000-000000000002", "closed"),
        ],
      }),
    });
    const customer = { isPending: true } as UseQueryResult<Customer>;
    renderApp(<CustomerSidebar ticket={TICKET} customer={customer} />, { me: AGENT });
    const others = await screen.findByTestId("other-tickets");
    expect(
      within(others)
        .getAllByRole("listitem")
        .map((li) => li.textContent),
    ).toEqual(["Charged twice this month #cccccccc Closed"]);
    const list = await screen.findByTestId("similar-tickets");
    const items = within(list).getAllByRole("listitem");
    const [first, second] = items;
    expect(items).toHaveLength(2);
    expect(first).toHaveTextContent("Charged twice this month #aaaaaaaa Resolved");
    expect(second).toHaveTextContent("Charged twice this month #bbbbbbbb Closed");
    expect(within(first!).getByRole("link")).toHaveAttribute(
      "href",
      "/tickets/aaaaaaaa-0000-0000-0000-000000000001",
    );
  });
});
