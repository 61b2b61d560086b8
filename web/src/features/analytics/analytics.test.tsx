import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AGENT, FakeSocket, json, mockFetch, renderApp, type FakeRequest } from "../../test/utils";
import type { Me } from "../../lib/types";
import { AnalyticsPage } from "./AnalyticsPage";
import { toCsv } from "./csv";
import { apiQuery, readFilters, writeFilters } from "./filters";
import { formatDuration } from "./format";

const ADMIN: Me = { ...AGENT, id: 1, name: "Grace Admin", role: "admin" };
const TEAM = "0b6f3c1e-8a52-4d8e-9d3f-6a1f2b3c4d5e";
const TEAM_OLD = "1c7a4d2f-9b63-4e9f-8e4a-7b2a3c4d5e6f";

beforeEach(() => {
  FakeSocket.all = [];
  // jsdom draws no canvas: the charts' tables carry the numbers.
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(null);
  // A few zones instead of every one: jsdom renders hundreds of options slowly.
  vi.spyOn(Intl, "supportedValuesOf").mockReturnValue(["Asia/Tokyo", "Europe/Berlin"]);
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("filters in the URL", () => {
  it("reads what the server accepts, drops the rest, and writes back only what is set", () => {
    const f = readFilters(
      new URLSearchParams(
        "from=2026-03-02&to=yesterday&tz=Asia/Tokyo&priority=high,bogus,low&tag=%20VIP%20&x=1" +
          "&team=sales",
      ),
    );
    expect(f).toEqual({
      from: "2026-03-02",
      to: undefined,
      tz: "Asia/Tokyo",
      priority: ["high", "low"],
      agent: undefined,
      team: undefined, // not a team's id: dropped
      tag: "VIP",
    });
    expect(readFilters(new URLSearchParams(`team=${TEAM}`)).team).toBe(TEAM);
    expect(readFilters(new URLSearchParams("team=none")).team).toBe("none");
    expect(writeFilters(f, new URLSearchParams("x=1")).toString()).toBe(
      "x=1&from=2026-03-02&tz=Asia%2FTokyo&priority=high%2Clow&tag=VIP",
    );
    expect(apiQuery(f, { clock: "wall" })).toBe(
      "?clock=wall&from=2026-03-02&priority=high%2Clow&tag=VIP&tz=Asia%2FTokyo",
    );
  });
});

describe("CSV", () => {
  it("quotes separators and quotes, and keeps formulas as text", () => {
    expect(
      toCsv(
        ["a", "b"],
        [
          ["x,y", 'say "hi"'],
          ["=SUM(A1)", 3],
          [null, -2],
        ],
      ),
    ).toBe('a,b\r\n"x,y","say ""hi"""\r\n\'=SUM(A1),3\r\n,-2\r\n');
  });

  it("formats durations", () => {
    expect([null, 30, 300, 5400, 3 * 86400].map(formatDuration)).toEqual([
      "–",
      "30 s",
      "5 min",
      "1.5 h",
      "3.0 d",
    ]);
  });
});

// The filters in effect, as the server answers them (the range the page names).
const IN_EFFECT = {
  from: "2026-03-02",
  to: "2026-03-03",
  tz: "UTC",
  priority: [],
  agent: null,
  tag: null,
  team: null,
};

function envelope(data: unknown) {
  return { filters: IN_EFFECT, data };
}

function analyticsApi(open: () => number) {
  const duration = {
    count: 2,
    median: 3600,
    p90: 7200,
    average: 5400,
    clock: "wall",
    distribution: [
      { bucket: "< 1 h", tickets: 1 },
      { bucket: "1-4 h", tickets: 1 },
    ],
  };
  return {
    "GET /api/auth/me": () => ADMIN,
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
    "GET /api/analytics/summary": () =>
      envelope({
        open: open(),
        created: 3,
        resolved: 2,
        resolution_median_seconds: 14 * 3600,
        resolution_average_seconds: 14 * 3600,
        first_response_median_seconds: 3600,
        sla_breaches: 2,
        sla_compliance_pct: 50,
        reopen_rate_pct: 33.33,
      }),
    "GET /api/analytics/daily": () =>
      envelope([
        { day: "2026-03-02", created: 3, resolved: 1 },
        { day: "2026-03-03", created: 1, resolved: 2 },
      ]),
    "GET /api/analytics/resolution": () => envelope(duration),
    "GET /api/analytics/first-response": () => envelope(duration),
    "GET /api/analytics/backlog": () =>
      envelope([
        { agent_id: "2", open: 1 },
        { agent_id: "", open: 1 },
      ]),
    "GET /api/analytics/status-over-time": () =>
      envelope([{ day: "2026-03-02", by_status: { open: 2, resolved: 1 } }]),
    "GET /api/analytics/drafts": () =>
      envelope([
        {
          agent_id: "2",
          drafts: 3,
          sent: 2,
          acceptance_pct: 66.67,
          edit_distance_avg: 18,
          edit_pct_avg: 12.5,
        },
      ]),
    "GET /api/analytics/satisfaction": () =>
      envelope({
        ratings: 2,
        average: 3.5,
        satisfied_pct: 50,
        distribution: [1, 2, 3, 4, 5].map((rating) => ({
          rating,
          tickets: rating === 3 || rating === 4 ? 1 : 0,
        })),
        by_agent: [
          { agent_id: "2", ratings: 1, average: 4, satisfied_pct: 100 },
          { agent_id: "", ratings: 1, average: 3, satisfied_pct: 0 },
        ],
        by_team: [{ team: "", ratings: 2, average: 3.5, satisfied_pct: 50 }],
      }),
    "GET /api/admin/teams": () => ({
      next: null,
      previous: null,
      results: [
        { id: TEAM, name: "Billing squad", archived: false, version: 1, members: [] },
        { id: TEAM_OLD, name: "Old team", archived: true, version: 2, members: [] },
      ],
    }),
  };
}

const summaries = (calls: FakeRequest[]) =>
  calls.filter((c) => c.path === "/api/analytics/summary");

describe("analytics dashboard", () => {
  it("shows the KPI cards and each chart's data, sends the URL's filters, and refetches on a queue frame", async () => {
    let open = 2;
    const { calls } = mockFetch(analyticsApi(() => open));
    renderApp(<AnalyticsPage />, {
      me: ADMIN,
      route: "/admin/analytics?from=2026-03-02&to=2026-03-03&tz=UTC&priority=high",
    });
    const card = await screen.findByTestId("kpi-open");
    expect(card).toHaveTextContent("Open tickets2");
    expect(screen.getByTestId("kpi-resolution")).toHaveTextContent("14.0 h");
    expect(screen.getByTestId("kpi-sla")).toHaveTextContent("2compliance 50 %");
    expect(screen.getByTestId("kpi-first-response")).toHaveTextContent("1.0 h");
    expect(screen.getByTestId("kpi-reopen")).toHaveTextContent("33.33 %");
    // The range in effect, named (the date inputs are empty when the URL has none).
    expect(screen.getByTestId("analytics-range")).toHaveTextContent(
      /Mar 2, 2026 – Mar 3, 2026 · UTC/,
    );
    expect(summaries(calls)[0]?.url).toBe(
      "/api/analytics/summary?from=2026-03-02&priority=high&to=2026-03-03&tz=UTC",
    );
    const backlog = await screen.findByTestId("chart-backlog");
    await waitFor(() => expect(within(backlog).getByText("Ada Lovelace")).toBeInTheDocument());
    expect(within(backlog).getByText("Unassigned")).toBeInTheDocument();
    const daily = screen.getByTestId("chart-daily");
    expect(within(daily).getByRole("row", { name: "2026-03-03 1 2" })).toBeInTheDocument();
    expect(screen.getByRole("img", { name: "Open tickets per agent" })).toBeInTheDocument();
    const drafts = await screen.findByTestId("chart-drafts");
    await waitFor(() =>
      expect(
        within(drafts).getByRole("row", { name: "Ada Lovelace 2 3 2 66.67 18 12.5" }),
      ).toBeInTheDocument(),
    );

    await waitFor(() =>
      expect(screen.getByTestId("kpi-satisfaction")).toHaveTextContent(
        "Satisfaction (CSAT)3.50 / 550 % satisfied · 2 rated",
      ),
    );
    const csat = screen.getByTestId("chart-satisfaction");
    expect(within(csat).getByRole("row", { name: "All 2 3.5 50" })).toBeInTheDocument();
    expect(within(csat).getByRole("row", { name: "Ada Lovelace 2 1 4 100" })).toBeInTheDocument();
    expect(within(csat).getByRole("row", { name: "Unassigned 1 3 0" })).toBeInTheDocument();

    const socket = FakeSocket.ready("1", "admin", 10);
    await waitFor(() =>
      expect(socket.sent).toContainEqual({
        type: "subscribe",
        stream: "queue",
        after_position: 10,
      }),
    );
    open = 3;
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
        data: { subject: "New" },
      }),
    );
    await waitFor(() => expect(screen.getByTestId("kpi-open")).toHaveTextContent("Open tickets3"));
    // The refetch waits for the frame's position (read-your-writes).
    expect(summaries(calls).at(-1)?.url).toContain("after=11");
  });

  it("applies the filters through the URL and exports a chart as CSV", async () => {
    const { calls } = mockFetch(analyticsApi(() => 1));
    const created: Blob[] = [];
    // jsdom has no object URLs: record the blob instead.
    Object.assign(URL, {
      createObjectURL: (b: Blob) => {
        created.push(b);
        return "blob:csv";
      },
      revokeObjectURL: () => undefined,
    });
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(() => {});
    renderApp(<AnalyticsPage />, { me: ADMIN, route: "/admin/analytics?tz=UTC" });
    await screen.findByTestId("kpi-open");
    // (fireEvent for the text fields: typing key by key is slow on a busy machine)
    fireEvent.change(screen.getByLabelText("From"), { target: { value: "2026-03-01" } });
    await userEvent.click(screen.getByRole("checkbox", { name: "Urgent" }));
    fireEvent.change(screen.getByLabelText("Tag"), { target: { value: "Billing" } });
    await userEvent.selectOptions(screen.getByLabelText("Agent"), "Unassigned");
    // Archived teams are not offered.
    await waitFor(() =>
      expect(
        within(screen.getByLabelText("Team")).getByRole("option", { name: "Billing squad" }),
      ).toBeInTheDocument(),
    );
    expect(
      within(screen.getByLabelText("Team")).queryByRole("option", { name: "Old team" }),
    ).toBeNull();
    await userEvent.selectOptions(screen.getByLabelText("Team"), "Billing squad");
    await userEvent.click(screen.getByRole("button", { name: "Apply" }));
    await waitFor(() =>
      // (plus ?after= the newest position this tab saw, if any)
      expect(summaries(calls).at(-1)?.url).toMatch(
        new RegExp(
          "^/api/analytics/summary\\?agent=none&from=2026-03-01&priority=urgent&tag=billing" +
            `&team=${TEAM}&tz=UTC(&after=\\d+)?$`,
        ),
      ),
    );
    expect(
      calls.some((c) => c.url.startsWith(`/api/analytics/drafts?`) && c.url.includes(TEAM)),
    ).toBe(true);
    // The form shows the URL's filters after the apply.
    expect(screen.getByRole("checkbox", { name: "Urgent" })).toBeChecked();

    const daily = await screen.findByTestId("chart-daily");
    await userEvent.click(within(daily).getByRole("button", { name: "Export CSV" }));
    expect(click).toHaveBeenCalledTimes(1);
    const text = await new Promise<string>((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result as string);
      reader.readAsText(created[0] as Blob);
    });
    expect(text).toBe("day,created,resolved\r\n2026-03-02,3,1\r\n2026-03-03,1,2\r\n");
  });

  it("tells anyone but an admin that analytics are for admins, and asks nothing", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/analytics/summary": () => json({ error: "permission_denied" }, 403),
    });
    renderApp(<AnalyticsPage />, { me: AGENT, route: "/admin/analytics" });
    expect(await screen.findByRole("alert")).toHaveTextContent("Only admins see analytics.");
    expect(calls.some((c) => c.path.startsWith("/api/analytics"))).toBe(false);
  });
});
