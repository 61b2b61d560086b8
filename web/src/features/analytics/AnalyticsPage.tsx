// The admin's live dashboard (issue 16): KPI cards and charts over GET /api/analytics/...,
// filters in the URL, every chart's data as CSV, kept live by the staff queue stream.
// Loaded on demand (App.tsx), so Chart.js stays out of the first page's bundle.

import { useQueryClient } from "@tanstack/react-query";
import type { ChartData, ChartOptions } from "chart.js";
import {
  memo,
  useCallback,
  useEffect,
  useMemo,
  useRef,
  type FormEvent,
  type ReactNode,
} from "react";
import { useSearchParams } from "react-router";
import { useTeams } from "../../api/admin";
import { useAgents } from "../../api/agents";
import { ErrorState, Loading } from "../../components/States";
import { useAuth } from "../../lib/auth";
import { PRIORITY_LABELS, STATUS_LABELS } from "../../lib/format";
import { useStream } from "../../lib/realtime-react";
import { PRIORITIES, STATUSES } from "../../lib/types";
import "./analytics.css";
import {
  analyticsKeys,
  useBacklog,
  useDaily,
  useDrafts,
  useFirstResponse,
  useResolution,
  useSatisfaction,
  useStatusOverTime,
  useSummary,
} from "./api";
import { BarChart, PALETTE } from "./Chart";
import { downloadCsv, toCsv, type Cell } from "./csv";
import { browserTimeZone, readFilters, writeFilters, type AnalyticsFilters } from "./filters";
import { formatCount, formatDay, formatDuration, formatPercent } from "./format";

/** Frames close together (a bulk change) refetch once. */
const LIVE_THROTTLE_MS = 250;

let knownZones: string[] | null = null;

function timeZones(current: string): string[] {
  if (!knownZones) {
    try {
      knownZones = Intl.supportedValuesOf("timeZone");
    } catch {
      knownZones = [];
    }
  }
  return [...new Set(["UTC", browserTimeZone(), current, ...knownZones])];
}

/** Invalidate the analytics queries when the queue stream reports a change (a ticket opened,
 * assigned, or its status changed); the refetch carries ?after= that frame's position. */
function useLiveAnalytics(enabled: boolean): void {
  const client = useQueryClient();
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  const refresh = () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      void client.invalidateQueries({ queryKey: analyticsKeys.all });
    }, LIVE_THROTTLE_MS);
  };
  useStream("queue", { onEvent: refresh, onResync: refresh }, { enabled });
}

// Memoised: its time-zone list is long, and the page re-renders as each chart's data arrives.
const FilterBar = memo(function FilterBar({
  filters,
  agents,
  teams,
  onApply,
}: {
  filters: AnalyticsFilters;
  agents: { id: string; name: string }[];
  teams: { id: string; name: string }[];
  onApply: (f: AnalyticsFilters) => void;
}) {
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const text = (key: string) => {
      const value = form.get(key);
      return typeof value === "string" ? value.trim() || undefined : undefined;
    };
    onApply({
      from: text("from"),
      to: text("to"),
      tz: text("tz") ?? "UTC",
      priority: PRIORITIES.filter((p) => form.getAll("priority").includes(p)),
      agent: text("agent"),
      team: text("team"),
      tag: text("tag")?.toLowerCase(),
    });
  }
  return (
    <form className="card analytics-filters" onSubmit={submit} aria-label="Dashboard filters">
      <label>
        From
        <input type="date" name="from" defaultValue={filters.from ?? ""} />
      </label>
      <label>
        To
        <input type="date" name="to" defaultValue={filters.to ?? ""} />
      </label>
      <label>
        Time zone
        <select name="tz" defaultValue={filters.tz}>
          {timeZones(filters.tz).map((zone) => (
            <option key={zone}>{zone}</option>
          ))}
        </select>
      </label>
      <fieldset>
        <legend>Priority</legend>
        {PRIORITIES.map((p) => (
          <label key={p} className="check">
            <input
              type="checkbox"
              name="priority"
              value={p}
              defaultChecked={filters.priority.includes(p)}
            />
            {PRIORITY_LABELS[p]}
          </label>
        ))}
      </fieldset>
      <label>
        Agent
        <select name="agent" defaultValue={filters.agent ?? ""}>
          <option value="">Any</option>
          <option value="none">Unassigned</option>
          {agents.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
          {filters.agent &&
            filters.agent !== "none" &&
            !agents.some((a) => a.id === filters.agent) && (
              <option value={filters.agent}>Agent {filters.agent}</option>
            )}
        </select>
      </label>
      <label>
        Team
        <select name="team" defaultValue={filters.team ?? ""}>
          <option value="">Any</option>
          <option value="none">No team</option>
          {teams.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
          {filters.team && filters.team !== "none" && !teams.some((t) => t.id === filters.team) && (
            <option value={filters.team}>Team {filters.team}</option>
          )}
        </select>
      </label>
      <label>
        Tag
        <input type="text" name="tag" maxLength={40} defaultValue={filters.tag ?? ""} />
      </label>
      <div className="row">
        <button type="submit">Apply</button>
        <button
          type="button"
          className="secondary"
          onClick={() => onApply({ tz: filters.tz, priority: [] })}
        >
          Reset
        </button>
      </div>
    </form>
  );
});

function Kpi({
  id,
  label,
  value,
  detail,
}: {
  id: string;
  label: string;
  value: string;
  detail?: string;
}) {
  return (
    <div className="card kpi" data-testid={`kpi-${id}`}>
      <div className="kpi-label">{label}</div>
      <div className="kpi-value">{value}</div>
      {detail && <div className="kpi-detail muted">{detail}</div>}
    </div>
  );
}

function KpiCards({ filters }: { filters: AnalyticsFilters }) {
  const summary = useSummary(filters);
  if (summary.isPending) return <Loading label="Loading the KPIs…" />;
  if (summary.isError)
    return <ErrorState error={summary.error} onRetry={() => void summary.refetch()} />;
  const s = summary.data.data;
  const range = summary.data.filters;
  return (
    <>
      {/* The range in effect: without from and to in the URL, the 30 days up to today. */}
      {range?.from && range.to && (
        <p className="muted analytics-range" data-testid="analytics-range">
          {formatDay(range.from)} – {formatDay(range.to)} · {range.tz}
        </p>
      )}
      {/* Busy while the previous filters' figures stand in for the new ones. */}
      <section className="kpis" aria-label="Key figures" aria-busy={summary.isPlaceholderData}>
        <Kpi id="open" label="Open tickets" value={formatCount(s.open)} detail="now" />
        <Kpi
          id="resolution"
          label="Average resolution time"
          value={formatDuration(s.resolution_average_seconds)}
          detail={`median ${formatDuration(s.resolution_median_seconds)}`}
        />
        <Kpi
          id="sla"
          label="SLA breaches"
          value={formatCount(s.sla_breaches)}
          detail={`compliance ${formatPercent(s.sla_compliance_pct)}`}
        />
        <Kpi
          id="first-response"
          label="First response (median)"
          value={formatDuration(s.first_response_median_seconds)}
        />
        <Kpi id="created" label="Created" value={formatCount(s.created)} detail="in the range" />
        <Kpi id="resolved" label="Resolved" value={formatCount(s.resolved)} detail="in the range" />
        <Kpi id="reopen" label="Reopen rate" value={formatPercent(s.reopen_rate_pct)} />
        <SatisfactionKpi filters={filters} />
      </section>
    </>
  );
}

/** CSAT: the average rating (1-5) of the tickets rated in the range, and the % rated 4-5. */
function SatisfactionKpi({ filters }: { filters: AnalyticsFilters }) {
  const q = useSatisfaction(filters);
  const c = q.data?.data;
  return (
    <Kpi
      id="satisfaction"
      label="Satisfaction (CSAT)"
      value={c?.average == null ? "–" : `${c.average.toFixed(2)} / 5`}
      detail={
        c ? `${formatPercent(c.satisfied_pct)} satisfied · ${formatCount(c.ratings)} rated` : "…"
      }
    />
  );
}

interface Table {
  header: string[];
  rows: Cell[][];
}

function ChartCard({
  id,
  title,
  filters,
  table,
  state,
  children,
}: {
  id: string;
  title: string;
  filters: AnalyticsFilters;
  table: Table | undefined;
  state: {
    isPending: boolean;
    isError: boolean;
    isPlaceholderData?: boolean;
    error: unknown;
    refetch: () => unknown;
  };
  children: ReactNode;
}) {
  const headingId = `chart-${id}`;
  let body: ReactNode;
  if (state.isPending) body = <Loading />;
  else if (state.isError || !table)
    body = <ErrorState error={state.error} onRetry={() => void state.refetch()} />;
  else
    body = (
      <>
        {children}
        <details>
          <summary>Data</summary>
          <table className="chart-table">
            <thead>
              <tr>
                {table.header.map((h) => (
                  <th key={h} scope="col">
                    {h}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {table.rows.map((row, i) => (
                <tr key={i}>
                  {row.map((c, j) => (
                    <td key={j}>{c ?? ""}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      </>
    );
  const range = [filters.from, filters.to].filter(Boolean).join("_") || "last-30-days";
  return (
    <section
      className="card chart-card"
      aria-labelledby={headingId}
      aria-busy={Boolean(state.isPlaceholderData)}
      data-testid={headingId}
    >
      <div className="row spread">
        <h2 id={headingId}>{title}</h2>
        <button
          type="button"
          className="secondary"
          disabled={!table}
          onClick={() =>
            table && downloadCsv(`deskstream-${id}-${range}.csv`, toCsv(table.header, table.rows))
          }
        >
          Export CSV
        </button>
      </div>
      {body}
    </section>
  );
}

// An axis of ticket counts: from zero, whole-number ticks (never 0.5 of a ticket).
const COUNT_AXIS = { beginAtZero: true, ticks: { precision: 0 } };
const BAR_OPTIONS: ChartOptions<"bar"> = { scales: { y: COUNT_AXIS } };
const STACKED_OPTIONS: ChartOptions<"bar"> = {
  scales: { x: { stacked: true }, y: { ...COUNT_AXIS, stacked: true } },
};
const HORIZONTAL_OPTIONS: ChartOptions<"bar"> = {
  indexAxis: "y",
  scales: { x: COUNT_AXIS },
  plugins: { legend: { display: false } },
};

const HORIZONTAL_OPTIONS_LEGEND: ChartOptions<"bar"> = {
  indexAxis: "y",
  scales: { x: { beginAtZero: true, max: 100 } },
};

function DailyVolume({ filters }: { filters: AnalyticsFilters }) {
  const q = useDaily(filters);
  const points = q.data?.data;
  const data = useMemo<ChartData<"bar">>(
    () => ({
      labels: points?.map((p) => p.day) ?? [],
      datasets: [
        {
          label: "Created",
          data: points?.map((p) => p.created) ?? [],
          backgroundColor: PALETTE[0],
        },
        {
          label: "Resolved",
          data: points?.map((p) => p.resolved) ?? [],
          backgroundColor: PALETTE[2],
        },
      ],
    }),
    [points],
  );
  const table = points && {
    header: ["day", "created", "resolved"],
    rows: points.map((p) => [p.day, p.created, p.resolved]),
  };
  return (
    <ChartCard id="daily" title="Daily volume" filters={filters} table={table} state={q}>
      <BarChart data={data} options={BAR_OPTIONS} label="Tickets created and resolved per day" />
    </ChartCard>
  );
}

function TimeDistribution({ filters }: { filters: AnalyticsFilters }) {
  const resolution = useResolution(filters);
  const first = useFirstResponse(filters);
  const r = resolution.data?.data;
  const f = first.data?.data;
  const data = useMemo<ChartData<"bar">>(
    () => ({
      labels: r?.distribution.map((b) => b.bucket) ?? [],
      datasets: [
        {
          label: "Resolution",
          data: r?.distribution.map((b) => b.tickets) ?? [],
          backgroundColor: PALETTE[0],
        },
        {
          label: "First response",
          data: f?.distribution.map((b) => b.tickets) ?? [],
          backgroundColor: PALETTE[1],
        },
      ],
    }),
    [r, f],
  );
  const table = r &&
    f && {
      header: ["time", "resolved tickets", "first responses"],
      rows: r.distribution.map((b, i) => [b.bucket, b.tickets, f.distribution[i]?.tickets ?? 0]),
    };
  const state = resolution.isPending || resolution.isError ? resolution : first;
  return (
    <ChartCard
      id="resolution"
      title="Resolution-time distribution"
      filters={filters}
      table={table}
      state={state}
    >
      {r && (
        <p className="muted">
          Resolution: median {formatDuration(r.median)}, p90 {formatDuration(r.p90)} ({r.count}{" "}
          tickets). First response: median {formatDuration(f?.median)}, p90 {formatDuration(f?.p90)}
          .
        </p>
      )}
      <BarChart
        data={data}
        options={BAR_OPTIONS}
        label="Tickets per resolution time and per first-response time"
      />
    </ChartCard>
  );
}

function Backlog({ filters, names }: { filters: AnalyticsFilters; names: Map<string, string> }) {
  const q = useBacklog(filters);
  const rows = q.data?.data;
  const name = (id: string) => (id ? (names.get(id) ?? `Agent ${id}`) : "Unassigned");
  const data = useMemo<ChartData<"bar">>(
    () => ({
      labels:
        rows?.map((r) =>
          r.agent_id ? (names.get(r.agent_id) ?? `Agent ${r.agent_id}`) : "Unassigned",
        ) ?? [],
      datasets: [
        {
          label: "Open tickets",
          data: rows?.map((r) => r.open) ?? [],
          backgroundColor: PALETTE[0],
        },
      ],
    }),
    [rows, names],
  );
  const table = rows && {
    header: ["agent", "agent id", "open tickets"],
    rows: rows.map((r) => [name(r.agent_id), r.agent_id, r.open]),
  };
  return (
    <ChartCard id="backlog" title="Backlog by agent" filters={filters} table={table} state={q}>
      <BarChart data={data} options={HORIZONTAL_OPTIONS} label="Open tickets per agent" />
    </ChartCard>
  );
}

function StatusOverTime({ filters }: { filters: AnalyticsFilters }) {
  const q = useStatusOverTime(filters);
  const days = q.data?.data;
  const data = useMemo<ChartData<"bar">>(
    () => ({
      labels: days?.map((d) => d.day) ?? [],
      datasets: STATUSES.map((s, i) => ({
        label: STATUS_LABELS[s],
        data: days?.map((d) => d.by_status[s] ?? 0) ?? [],
        backgroundColor: PALETTE[i % PALETTE.length],
      })),
    }),
    [days],
  );
  const table = days && {
    header: ["day", ...STATUSES],
    rows: days.map((d) => [d.day, ...STATUSES.map((s) => d.by_status[s] ?? 0)]),
  };
  return (
    <ChartCard
      id="status"
      title="Status distribution over time"
      filters={filters}
      table={table}
      state={q}
    >
      <BarChart
        data={data}
        options={STACKED_OPTIONS}
        label="Tickets by status at the end of each day"
      />
    </ChartCard>
  );
}

function Drafts({ filters, names }: { filters: AnalyticsFilters; names: Map<string, string> }) {
  const q = useDrafts(filters);
  const rows = q.data?.data;
  const data = useMemo<ChartData<"bar">>(
    () => ({
      labels: rows?.map((r) => names.get(r.agent_id) ?? `Agent ${r.agent_id}`) ?? [],
      datasets: [
        {
          label: "Acceptance %",
          data: rows?.map((r) => r.acceptance_pct ?? 0) ?? [],
          backgroundColor: PALETTE[2],
        },
        {
          label: "Average edit %",
          data: rows?.map((r) => r.edit_pct_avg ?? 0) ?? [],
          backgroundColor: PALETTE[1],
        },
      ],
    }),
    [rows, names],
  );
  const table = rows && {
    header: [
      "agent",
      "agent id",
      "drafts ready",
      "sent",
      "acceptance %",
      "average edit (characters)",
      "average edit %",
    ],
    rows: rows.map((r) => [
      names.get(r.agent_id) ?? `Agent ${r.agent_id}`,
      r.agent_id,
      r.drafts,
      r.sent,
      r.acceptance_pct,
      r.edit_distance_avg,
      r.edit_pct_avg,
    ]),
  };
  return (
    <ChartCard id="drafts" title="AI drafts by agent" filters={filters} table={table} state={q}>
      {rows && rows.length === 0 ? (
        <p className="muted">No AI draft came back in this range.</p>
      ) : (
        <BarChart
          data={data}
          options={HORIZONTAL_OPTIONS_LEGEND}
          label="AI-draft acceptance rate and average edit per agent"
        />
      )}
    </ChartCard>
  );
}

function SatisfactionChart({
  filters,
  names,
}: {
  filters: AnalyticsFilters;
  names: Map<string, string>;
}) {
  const q = useSatisfaction(filters);
  const c = q.data?.data;
  const data = useMemo<ChartData<"bar">>(
    () => ({
      labels: c?.distribution.map((d) => `${d.rating} ★`) ?? [],
      datasets: [
        {
          label: "Tickets",
          data: c?.distribution.map((d) => d.tickets) ?? [],
          backgroundColor: PALETTE[0],
        },
      ],
    }),
    [c],
  );
  const name = (id: string) => (id ? (names.get(id) ?? `Agent ${id}`) : "Unassigned");
  const table = c && {
    header: ["agent", "agent id", "ratings", "average (1-5)", "satisfied % (4-5)"],
    rows: [
      ["All", "", c.ratings, c.average, c.satisfied_pct],
      ...c.by_agent.map((r) => [
        name(r.agent_id),
        r.agent_id,
        r.ratings,
        r.average,
        r.satisfied_pct,
      ]),
    ],
  };
  return (
    <ChartCard
      id="satisfaction"
      title="Customer satisfaction"
      filters={filters}
      table={table}
      state={q}
    >
      {c && c.ratings === 0 ? (
        <p className="muted">No ticket was rated in this range.</p>
      ) : (
        <BarChart data={data} options={BAR_OPTIONS} label="Ratings given, from 1 to 5" />
      )}
    </ChartCard>
  );
}

export function AnalyticsPage() {
  const { me } = useAuth();
  const isAdmin = me?.role === "admin";
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => readFilters(params), [params]);
  const agents = useAgents(isAdmin);
  const names = useMemo(
    () => new Map((agents.data ?? []).map((a) => [a.user_id, a.name])),
    [agents.data],
  );
  const teamsQuery = useTeams(isAdmin);
  const teams = useMemo(
    () =>
      (teamsQuery.data?.results ?? [])
        .filter((t) => !t.archived || t.id === filters.team)
        .map((t) => ({ id: t.id, name: t.name })),
    [teamsQuery.data, filters.team],
  );
  useLiveAnalytics(isAdmin);
  const choices = useMemo(
    () => (agents.data ?? []).map((a) => ({ id: a.user_id, name: a.name })),
    [agents.data],
  );
  const apply = useCallback(
    (f: AnalyticsFilters) => setParams((current) => writeFilters(f, current)),
    [setParams],
  );
  if (!isAdmin)
    return (
      <main id="main">
        <h1>Analytics</h1>
        <p role="alert">Only admins see analytics.</p>
      </main>
    );
  return (
    <main id="main" className="analytics">
      <h1>Analytics</h1>
      <FilterBar
        key={params.toString()}
        filters={filters}
        agents={choices}
        teams={teams}
        onApply={apply}
      />
      <KpiCards filters={filters} />
      <div className="chart-grid">
        <DailyVolume filters={filters} />
        <TimeDistribution filters={filters} />
        <Backlog filters={filters} names={names} />
        <StatusOverTime filters={filters} />
        <SatisfactionChart filters={filters} names={names} />
        <Drafts filters={filters} names={names} />
      </div>
    </main>
  );
}
