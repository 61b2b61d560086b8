import { useState } from "react";
import { useAgents } from "../../api/agents";
import { flattenTickets, useTicketList } from "../../api/tickets";
import { Filters } from "../../components/Filters";
import { Empty, ErrorState, Loading } from "../../components/States";
import { VirtualTicketList } from "../../components/VirtualTicketList";
import { useAuth } from "../../lib/auth";
import type { TicketFilters } from "../../lib/types";

/** Tickets with filters, virtualised with infinite scroll (customers see their own). */
export function TicketListSection({ title = "Your tickets" }: { title?: string }) {
  const { isStaff } = useAuth();
  const [filters, setFilters] = useState<TicketFilters>({});
  const list = useTicketList("all", filters);
  const agents = useAgents(isStaff);
  const tickets = flattenTickets(list.data);
  const names = new Map(agents.data?.map((a) => [a.user_id, a.name]));
  return (
    <section aria-labelledby="ticket-list-title" className="card">
      <h2 id="ticket-list-title">{title}</h2>
      <Filters value={filters} onChange={setFilters} />
      {list.isPending ? (
        <Loading label="Loading tickets…" />
      ) : list.isError ? (
        <ErrorState error={list.error} onRetry={() => void list.refetch()} />
      ) : tickets.length === 0 ? (
        <Empty>No tickets{Object.keys(filters).length ? " match these filters" : " yet"}.</Empty>
      ) : (
        <VirtualTicketList
          label={title}
          tickets={tickets}
          hasMore={list.hasNextPage}
          loadingMore={list.isFetchingNextPage}
          onLoadMore={() => void list.fetchNextPage()}
          agentName={(id) => (id ? names.get(id) : undefined)}
        />
      )}
    </section>
  );
}
