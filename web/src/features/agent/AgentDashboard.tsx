// The agent's desk: my queue and the unassigned list (both live from the queue stream), my
// availability, and the presence of the other agents.

import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useAgents, usePresence, useSetAvailability } from "../../api/agents";
import { flattenTickets, useTicketList } from "../../api/tickets";
import { Empty, ErrorState, Loading } from "../../components/States";
import { VirtualTicketList } from "../../components/VirtualTicketList";
import { errorMessage } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { useStream } from "../../lib/realtime-react";
import { useToasts } from "../../lib/toast";
import type { Availability, EventFrame, TicketFilters } from "../../lib/types";

const ACTIVE: TicketFilters["status"] = ["open", "assigned", "in_progress", "waiting_on_customer"];

function TicketQueue({
  title,
  filters,
  names,
}: {
  title: string;
  filters: TicketFilters;
  names: Map<string, string>;
}) {
  const list = useTicketList("queue", filters);
  const tickets = flattenTickets(list.data);
  const id = title.toLowerCase().replace(/\W+/g, "-");
  return (
    <section className="card" aria-labelledby={id} data-testid={id}>
      <h2 id={id}>
        {title}{" "}
        <span className="count">
          {list.isSuccess ? tickets.length + (list.hasNextPage ? "+" : "") : ""}
        </span>
      </h2>
      {list.isPending ? (
        <Loading />
      ) : list.isError ? (
        <ErrorState error={list.error} onRetry={() => void list.refetch()} />
      ) : tickets.length === 0 ? (
        <Empty>Nothing here.</Empty>
      ) : (
        <VirtualTicketList
          label={title}
          tickets={tickets}
          height="calc(100vh - 13rem)"
          hasMore={list.hasNextPage}
          loadingMore={list.isFetchingNextPage}
          onLoadMore={() => void list.fetchNextPage()}
          agentName={(a) => (a ? names.get(a) : undefined)}
        />
      )}
    </section>
  );
}

export function AgentDashboard() {
  const { me } = useAuth();
  const client = useQueryClient();
  const toasts = useToasts();
  const agents = useAgents(true);
  const myId = String(me?.id ?? "");
  const setAvailability = useSetAvailability(myId);
  const presence = usePresence(true);
  const [confirmOffline, setConfirmOffline] = useState(false);
  const names = new Map(agents.data?.map((a) => [a.user_id, a.name]));
  const mine = agents.data?.find((a) => a.user_id === myId);
  // An agent who never chose is online (docs/realtime.md); the workload lists agents once
  // their Agent aggregate exists, so fall back to what presence says, then to online.
  const current: Availability = mine?.availability ?? presence[myId]?.availability ?? "online";

  // Toasts only for what concerns this agent, one per ticket (lib/toast keys them): a new
  // ticket while nobody has it; it goes once the ticket is assigned to someone else. The
  // agent it is assigned to hears it from their own notification stream.
  useStream("queue", {
    onEvent: (frame: EventFrame) => {
      void client.invalidateQueries({ queryKey: ["tickets"] });
      void client.invalidateQueries({ queryKey: ["agents"] });
      const key = `ticket:${frame.ticket_id}`;
      if (frame.kind === "ticket_created" && !frame.data.agent_id)
        toasts.push(
          `New ticket: ${String(frame.data.subject)}`,
          "info",
          `/tickets/${frame.ticket_id}`,
          {
            key,
          },
        );
      if (frame.kind === "assignment_changed" && frame.data.agent_id !== myId)
        toasts.dismissKey(key);
    },
    onResync: () => void client.invalidateQueries({ queryKey: ["tickets"] }),
  });

  function toggle(value: Availability) {
    // Going offline hands the queue to others: say so first, and ask.
    if (value === "offline" && current !== "offline" && (mine?.open_tickets ?? 0) > 0) {
      setConfirmOffline(true);
      return;
    }
    apply(value);
  }
  function apply(value: Availability) {
    setConfirmOffline(false);
    setAvailability.mutate(value, {
      onError: (e) => toasts.push(`Availability not changed: ${errorMessage(e)}`, "error"),
    });
  }

  const others = Object.values(presence).filter((p) => p.user_id !== myId);
  const openCount = mine?.open_tickets ?? 0;
  // Until the workload is in, this agent's open tickets are unknown: a choice made then
  // would go offline without the warning of what moves. (If the read fails, the toggle
  // works: the server hands the tickets over all the same.)
  const workloadPending = agents.isPending;
  return (
    <main id="main" className="dashboard agent-dashboard">
      <section className="card availability" aria-labelledby="availability-title">
        <h2 id="availability-title">Your availability</h2>
        <div
          role="radiogroup"
          aria-labelledby="availability-title"
          aria-busy={workloadPending}
          className="segmented"
        >
          {(["online", "away", "offline"] as Availability[]).map((value) => (
            <label key={value} className={current === value ? "selected" : ""}>
              <input
                type="radio"
                name="availability"
                value={value}
                checked={current === value}
                disabled={workloadPending}
                onChange={() => toggle(value)}
              />
              {value[0]!.toUpperCase() + value.slice(1)}
            </label>
          ))}
        </div>
        {confirmOffline && (
          <div
            role="alertdialog"
            aria-labelledby="offline-title"
            className="card pending-change-box"
          >
            <h3 id="offline-title">Go offline?</h3>
            <p data-testid="offline-warning">
              Your {openCount} open ticket{openCount === 1 ? "" : "s"} will move to other agents.
              Going online again does not bring {openCount === 1 ? "it" : "them"} back.
            </p>
            <div className="row">
              <button type="button" onClick={() => apply("offline")}>
                Go offline and hand over
              </button>
              <button type="button" className="secondary" onClick={() => setConfirmOffline(false)}>
                Stay {current}
              </button>
            </div>
          </div>
        )}
        <h3>Agents</h3>
        {others.length === 0 ? (
          <p className="muted">No other agents known yet.</p>
        ) : (
          <ul className="presence" aria-label="Agent presence" data-testid="presence">
            {others.map((p) => (
              <li key={p.user_id}>
                <span className={`dot dot-${p.state}`} aria-hidden="true" /> {p.name}{" "}
                <span className="muted">{p.state}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <div className="queues">
        <TicketQueue title="My queue" filters={{ agent: myId, status: ACTIVE }} names={names} />
        <TicketQueue
          title="Unassigned"
          filters={{ agent: "none", status: ["open"] }}
          names={names}
        />
      </div>
    </main>
  );
}
