import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useSearchParams } from "react-router";
import { useAgents } from "../../api/agents";
import { useCustomer } from "../../api/customers";
import { savedValues, useDeleteFilter, useSaveFilter, useSavedFilters } from "../../api/macros";
import { flattenTickets, useTicketList, useTicketViews } from "../../api/tickets";
import { Filters } from "../../components/Filters";
import { Empty, ErrorState, Loading } from "../../components/States";
import { VirtualTicketList } from "../../components/VirtualTicketList";
import { BulkActions } from "./BulkActions";
import { useAuth } from "../../lib/auth";
import { errorMessage } from "../../lib/api";
import { useStream } from "../../lib/realtime-react";
import type { SavedFilter, TicketFilters, TicketView } from "../../lib/types";

type Sort = NonNullable<TicketFilters["sort"]>;
const SORTS: [Sort, string][] = [
  ["-created_at", "Newest first"],
  ["created_at", "Oldest first"],
  ["-updated_at", "Recently updated"],
  ["updated_at", "Least recently updated"],
];

/** Tickets with filters and a sort order, virtualised with infinite scroll (customers see
 * their own). Staff's list is live: every queue change refetches it. `?customer=` (a
 * customer hit in search) shows that customer's tickets. */
export function TicketListSection({ title = "Your tickets" }: { title?: string }) {
  const { isStaff } = useAuth();
  const client = useQueryClient();
  const [params, setParams] = useSearchParams();
  const customerId = isStaff ? (params.get("customer") ?? undefined) : undefined;
  const [filters, setFilters] = useState<TicketFilters>({});
  const [sort, setSort] = useState<Sort>("-created_at");
  const [view, setView] = useState<TicketView["id"]>("all");
  const views = useTicketViews(isStaff);
  const saved = useSavedFilters(isStaff);
  const [savedId, setSavedId] = useState<number | null>(null);
  const changeFilters = (next: TicketFilters) => {
    setFilters(next);
    setSavedId(null);
  };
  const openSaved = (f: SavedFilter) => {
    setFilters({
      status: f.filters.status,
      priority: f.filters.priority,
      tags: f.filters.tags,
      agent: f.filters.agent,
    });
    setView(f.filters.view ?? "all");
    setSavedId(f.id);
  };
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const toggle = (id: string) =>
    setSelected((all) => {
      const next = new Set(all);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const scoped: TicketFilters = {
    ...filters,
    customer: customerId,
    sort,
    view: isStaff && view !== "all" ? view : undefined,
  };
  const list = useTicketList("all", scoped);
  const agents = useAgents(isStaff);
  const customer = useCustomer(customerId, isStaff);
  const tickets = flattenTickets(list.data);
  const names = new Map(agents.data?.map((a) => [a.user_id, a.name]));
  useStream(
    "queue",
    {
      onEvent: () => void client.invalidateQueries({ queryKey: ["tickets"] }),
      onResync: () => void client.invalidateQueries({ queryKey: ["tickets"] }),
    },
    { enabled: isStaff },
  );
  return (
    <section aria-labelledby="ticket-list-title" className="card">
      <h2 id="ticket-list-title">{title}</h2>
      {isStaff && views.data && (
        <nav aria-label="Views" className="views">
          <ul className="tag-list" data-testid="views">
            {views.data.map((v) => (
              <li key={v.id}>
                <button
                  type="button"
                  className={v.id === view ? "" : "secondary"}
                  aria-pressed={v.id === view}
                  onClick={() => {
                    setView(v.id);
                    setSavedId(null);
                  }}
                >
                  {v.name} <span className="count">{v.count}</span>
                </button>
              </li>
            ))}
            {saved.data?.map((f) => (
              <li key={`saved-${f.id}`} className="saved-view">
                <button
                  type="button"
                  className={f.id === savedId ? "" : "secondary"}
                  aria-pressed={f.id === savedId}
                  onClick={() => openSaved(f)}
                >
                  {f.name} <span className="count">{f.count}</span>
                </button>
                <DeleteSaved filter={f} onDeleted={() => f.id === savedId && setSavedId(null)} />
              </li>
            ))}
          </ul>
        </nav>
      )}
      {customerId && (
        <p data-testid="customer-filter">
          Tickets of {customer.data?.name || customer.data?.email || "one customer"}{" "}
          <button type="button" className="link-button" onClick={() => setParams({})}>
            Show all customers
          </button>
        </p>
      )}
      <Filters value={filters} onChange={changeFilters} />
      {isStaff && <SaveFilters filters={filters} view={view} />}
      <div className="list-controls">
        <label>
          Sort
          <select value={sort} onChange={(e) => setSort(e.target.value as Sort)}>
            {SORTS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {isStaff && selected.size > 0 && (
        <BulkActions tickets={tickets} selected={selected} onDone={() => setSelected(new Set())} />
      )}
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
          time={sort.endsWith("created_at") ? "created" : "updated"}
          selection={isStaff ? { selected, toggle } : undefined}
        />
      )}
    </section>
  );
}

/** "Save these filters" under a name: they come back as a view of mine with its count. */
function SaveFilters({ filters, view }: { filters: TicketFilters; view: string }) {
  const save = useSaveFilter();
  const [name, setName] = useState("");
  const [report, setReport] = useState("");
  const values = savedValues(filters, view);
  const empty = Object.keys(values).length === 0;
  return (
    <form
      className="save-filters"
      onSubmit={(e) => {
        e.preventDefault();
        if (!name.trim()) {
          setReport("Give the filters a name.");
          return;
        }
        save.mutate(
          { name: name.trim(), filters: values },
          {
            onSuccess: (f) => {
              setReport(`Saved “${f.name}” (${f.count} tickets now).`);
              setName("");
            },
            onError: (error) => setReport(`Not saved: ${errorMessage(error)}`),
          },
        );
      }}
    >
      <label>
        Save these filters as
        <input
          value={name}
          maxLength={80}
          size={14}
          onChange={(e) => setName(e.target.value)}
          disabled={empty}
        />
      </label>
      <button type="submit" className="secondary" disabled={empty || save.isPending}>
        Save view
      </button>
      <span role="status" className="muted" data-testid="save-filters-report">
        {empty ? "Choose a view or filters to save them." : report}
      </span>
    </form>
  );
}

function DeleteSaved({ filter, onDeleted }: { filter: SavedFilter; onDeleted: () => void }) {
  const remove = useDeleteFilter();
  return (
    <button
      type="button"
      className="link-button"
      aria-label={`Delete saved view ${filter.name}`}
      disabled={remove.isPending}
      onClick={() => remove.mutate(filter.id, { onSuccess: onDeleted })}
    >
      ×
    </button>
  );
}
