import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CUSTOMER, FakeSocket, mockFetch, renderApp } from "../../test/utils";
import { NotificationCentre, describeNotification } from "./NotificationCentre";

beforeEach(() => {
  FakeSocket.all = [];
});
afterEach(() => vi.unstubAllGlobals());

const EMPTY_PAGE = { next: null, previous: null, results: [] };

describe("notifications", () => {
  it("counts unread, lists them, and marks all read", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me": () => CUSTOMER,
      "GET /api/notifications": () => ({
        ...EMPTY_PAGE,
        unread_count: 1,
        results: [
          {
            id: "n1",
            kind: "public_reply",
            ticket_id: "t1",
            read: false,
            created_at: "2026-11-26T10:00:00Z",
            position: 5,
            payload: { ticket_subject: "Printer", excerpt: "Which one?" },
          },
        ],
      }),
      "POST /api/notifications/read-all": () => ({ marked: 1, unread_count: 0 }),
    });
    renderApp(<NotificationCentre />, { me: CUSTOMER });
    expect(await screen.findByTestId("unread-count")).toHaveTextContent("1");
    await userEvent.click(screen.getByRole("button", { name: /Notifications/ }));
    expect(
      screen.getByRole("link", { name: "New reply on “Printer”: Which one?" }),
    ).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Mark all read" }));
    expect(calls.some((c) => c.path === "/api/notifications/read-all")).toBe(true);
  });

  it("describes every kind", () => {
    expect(
      describeNotification({
        kind: "status_changed",
        payload: { ticket_subject: "X", to_status: "resolved" },
      }),
    ).toBe("“X” is now Resolved");
    expect(describeNotification({ kind: "assigned", payload: {} })).toBe(
      "a ticket was assigned to you",
    );
  });

  it("describes SLA notifications", () => {
    const payload = {
      ticket_subject: "VPN",
      target: "resolution",
      deadline: "2026-12-07T17:00:00Z",
    };
    expect(describeNotification({ kind: "sla_reminder", payload })).toMatch(
      /^Resolution due soon on “VPN”/,
    );
    expect(describeNotification({ kind: "sla_breached", payload })).toMatch(
      /^SLA breached: Resolution on “VPN” was due/,
    );
  });
});
