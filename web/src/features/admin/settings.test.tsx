import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AGENT, json, mockFetch, renderApp, type FakeRequest } from "../../test/utils";
import type { Me } from "../../lib/types";
import { SettingsPage } from "./SettingsPage";

const ADMIN: Me = { ...AGENT, id: 1, name: "Grace Admin", role: "admin" };

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function settingsApi(drafts: () => Record<string, unknown>) {
  const limits = { first_response_minutes: 60, resolution_minutes: 480 };
  return {
    "GET /api/auth/me": () => ADMIN,
    "GET /api/settings/calendar": () => ({
      time_zone: "UTC",
      weekly_hours: { mon: [["09:00", "17:00"]] },
      holidays: [],
    }),
    "GET /api/settings/sla": () => ({ urgent: limits, high: limits, medium: limits, low: limits }),
    "GET /api/settings/assignment": () => ({ enabled: false, policy: "round_robin" }),
    "GET /api/settings/tickets": () => ({ customers_set_priority: false }),
    "GET /api/settings/sla-reminders": () => ({ minutes_before: 30 }),
    "GET /api/settings/rate-limits": () =>
      Object.fromEntries(
        ["sign_in", "refresh", "ticket_creation", "messages", "search"].map((scope) => [
          scope,
          { per_user: 30, per_ip: 60, window_seconds: 60 },
        ]),
      ),
    "GET /api/settings/email-templates": () => [],
    "GET /api/outbox": () => ({ enabled: false, results: [] }),
    "GET /api/settings/drafts": drafts,
  };
}

const puts = (calls: FakeRequest[]) =>
  calls.filter((c) => c.method === "PUT" && c.path === "/api/settings/drafts");

describe("AI draft settings", () => {
  it("shows the settings, saves every field (not the read-only source), and names a refused field", async () => {
    let current: Record<string, unknown> = {
      enabled: true,
      model: "",
      per_agent: 20,
      global: 300,
      window_seconds: 60,
      source: "retrieval",
    };
    const { calls } = mockFetch({
      ...settingsApi(() => current),
      "PUT /api/settings/drafts": (req) => {
        const body = req.body as Record<string, number>;
        if ((body.global ?? 0) > 1000)
          return json(
            {
              error: "invalid",
              detail: "Invalid input.",
              fields: { global: ["Expected a whole number from 0 to 1000000."] },
            },
            400,
          );
        current = { ...body, source: "retrieval" };
        return current;
      },
    });
    renderApp(<SettingsPage />, { me: ADMIN, route: "/admin/settings" });
    const form = await screen.findByRole("form", { name: "AI drafts" });
    expect(form).toHaveTextContent("past replies (retrieval)");
    const on = within(form).getByRole("checkbox", { name: "Agents may ask for drafts" });
    expect(on).toBeChecked();
    expect(within(form).getByLabelText(/Drafts per agent/)).toHaveValue(20);

    await userEvent.click(on);
    fireEvent.change(within(form).getByLabelText(/^Model/), { target: { value: "gpt-x" } });
    fireEvent.change(within(form).getByLabelText(/Drafts per agent/), { target: { value: "5" } });
    await userEvent.click(within(form).getByRole("button", { name: "Save AI drafts" }));
    await waitFor(() => expect(puts(calls)).toHaveLength(1));
    expect(puts(calls)[0]?.body).toEqual({
      enabled: false,
      model: "gpt-x",
      per_agent: 5,
      global: 300,
      window_seconds: 60,
    });

    // The server refuses a field: the form says which, next to it.
    fireEvent.change(within(form).getByLabelText(/Drafts for everyone/), {
      target: { value: "5000" },
    });
    await userEvent.click(within(form).getByRole("button", { name: "Save AI drafts" }));
    expect(
      await within(form).findByText("Expected a whole number from 0 to 1000000."),
    ).toBeVisible();
    expect(current.global).toBe(300);
  });
});
