// A virtualised ticket list with infinite scroll: only the rows in view are in the DOM, so a
// list of thousands scrolls smoothly; the next page loads as the end comes into view (and a
// "Load more" button does the same from the keyboard).

import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef } from "react";
import type { Ticket } from "../lib/types";
import { TicketCard } from "./TicketCard";

export interface VirtualTicketListProps {
  tickets: Ticket[];
  hasMore: boolean;
  loadingMore: boolean;
  onLoadMore: () => void;
  agentName?: (id: string | null) => string | undefined;
  label: string;
  height?: number | string;
  /** Which time the rows show (the one the list is sorted by). */
  time?: "created" | "updated";
  /** Rows can be selected (bulk actions): the selected ids and how to toggle one. */
  selection?: { selected: Set<string>; toggle: (id: string) => void };
}

const ROW_HEIGHT = 76;

export function VirtualTicketList({
  tickets,
  hasMore,
  loadingMore,
  onLoadMore,
  agentName,
  label,
  height = "60vh",
  time,
  selection,
}: VirtualTicketListProps) {
  const parent = useRef<HTMLDivElement>(null);
  // The app does not run the React Compiler, which would skip this component anyway.
  // eslint-disable-next-line react-hooks/incompatible-library -- TanStack Virtual's API is not memoizable
  const virtualizer = useVirtualizer({
    count: tickets.length,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
    initialRect: { width: 800, height: 600 },
  });
  const items = virtualizer.getVirtualItems();
  const last = items[items.length - 1];

  useEffect(() => {
    if (last && last.index >= tickets.length - 5 && hasMore && !loadingMore) onLoadMore();
  }, [last, tickets.length, hasMore, loadingMore, onLoadMore]);

  return (
    <div>
      <div
        ref={parent}
        className="virtual-list"
        style={{ maxHeight: height }}
        role="list"
        aria-label={label}
        data-testid="ticket-list"
        tabIndex={0}
      >
        <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
          {items.map((row) => {
            const ticket = tickets[row.index]!;
            return (
              <div
                key={ticket.id}
                role="listitem"
                className="virtual-row"
                style={{
                  position: "absolute",
                  top: 0,
                  left: 0,
                  right: 0,
                  height: ROW_HEIGHT,
                  transform: `translateY(${row.start}px)`,
                }}
              >
                {selection ? (
                  <div className="selectable-row">
                    <input
                      type="checkbox"
                      aria-label={`Select ${ticket.subject}`}
                      checked={selection.selected.has(ticket.id)}
                      onChange={() => selection.toggle(ticket.id)}
                    />
                    <TicketCard
                      ticket={ticket}
                      agentName={agentName?.(ticket.assigned_agent_id)}
                      time={time}
                    />
                  </div>
                ) : (
                  <TicketCard
                    ticket={ticket}
                    agentName={agentName?.(ticket.assigned_agent_id)}
                    time={time}
                  />
                )}
              </div>
            );
          })}
        </div>
      </div>
      <div className="list-footer">
        <span className="muted" aria-live="polite">
          {tickets.length} ticket{tickets.length === 1 ? "" : "s"}
          {hasMore ? " loaded" : ""}
        </span>
        {hasMore && (
          <button type="button" onClick={onLoadMore} disabled={loadingMore}>
            {loadingMore ? "Loading…" : "Load more"}
          </button>
        )}
      </div>
    </div>
  );
}
