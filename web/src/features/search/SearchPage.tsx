// Search results grouped by tickets, messages and customers (customers: staff only).

import { Fragment, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { fetchSearch, searchPath, useSearch } from "../../api/search";
import { Filters } from "../../components/Filters";
import { PriorityBadge, StatusBadge } from "../../components/Badges";
import { Empty, ErrorState, Loading } from "../../components/States";
import { formatTime } from "../../lib/format";
import { errorMessage } from "../../lib/api";
import type { SearchHit, TicketFilters } from "../../lib/types";

type Group = "tickets" | "messages" | "customers";

/** The snippet is escaped HTML with <mark> around matches: keep the text and the marks only. */
export function Snippet({ html }: { html: string }) {
  const parts = html.split(/(<mark>.*?<\/mark>)/g);
  // A textarea decodes entities and never creates elements or runs anything.
  const decode = (s: string) => {
    const area = document.createElement("textarea");
    area.innerHTML = s;
    return area.value;
  };
  return (
    <span className="snippet">
      {parts.map((part, i) =>
        part.startsWith("<mark>") ? (
          <mark key={i}>{decode(part.slice(6, -7))}</mark>
        ) : (
          <Fragment key={i}>{decode(part)}</Fragment>
        ),
      )}
    </span>
  );
}

function Hit({ hit, kind }: { hit: SearchHit; kind: string }) {
  const title = kind === "customers" ? hit.title : hit.title;
  return (
    <li className="search-hit">
      {hit.ticket_id ? (
        <Link to={`/tickets/${hit.ticket_id}`}>{title}</Link>
      ) : kind === "customers" ? (
        <Link to={`/tickets?customer=${encodeURIComponent(hit.customer_id)}`}>{title}</Link>
      ) : (
        <strong>{title}</strong>
      )}
      {hit.status && <StatusBadge status={hit.status} />}
      {hit.priority && <PriorityBadge priority={hit.priority} />}
      {hit.internal && <span className="badge internal-label">Internal note</span>}
      <div>
        <Snippet html={hit.snippet} />
      </div>
      {hit.occurred_at && <span className="muted small">{formatTime(hit.occurred_at)}</span>}
    </li>
  );
}

export function SearchPage() {
  const [params] = useSearchParams();
  const q = params.get("q") ?? "";
  const [filters, setFilters] = useState<TicketFilters>({});
  const search = useSearch(q, filters);
  // Further pages of each group ("More"), reset when the query or the filters change.
  const [more, setMore] = useState<{ key: string; pages: Partial<Record<Group, SearchHit[][]>> }>({
    key: "",
    pages: {},
  });
  const [moreError, setMoreError] = useState<string | null>(null);
  const key = JSON.stringify([q, filters]);
  const pages = more.key === key ? more.pages : {};
  async function loadMore(group: Group) {
    setMoreError(null);
    try {
      const page = (pages[group]?.length ?? 0) + 2;
      const answer = await fetchSearch(searchPath(q, filters, { kind: group, page }));
      setMore({
        key,
        pages: { ...pages, [group]: [...(pages[group] ?? []), answer.groups[group].results] },
      });
    } catch (e) {
      setMoreError(errorMessage(e));
    }
  }
  return (
    <main id="main" className="search-page">
      <h1>Search{q && <>: “{q}”</>}</h1>
      {q && <Filters value={filters} onChange={setFilters} />}
      {moreError && <p role="alert">{moreError}</p>}
      {!q ? (
        <Empty>Type in the search box above.</Empty>
      ) : search.isPending ? (
        <Loading label="Searching…" />
      ) : search.isError ? (
        <ErrorState error={search.error} onRetry={() => void search.refetch()} />
      ) : (
        <div className="search-groups">
          {(["tickets", "messages", "customers"] as const).map((group) => {
            const g = search.data.groups[group];
            const results = [...g.results, ...(pages[group] ?? []).flat()];
            return (
              <section
                key={group}
                className="card"
                aria-labelledby={`group-${group}`}
                data-testid={`search-${group}`}
              >
                <h2 id={`group-${group}`}>
                  {group[0]!.toUpperCase() + group.slice(1)}{" "}
                  <span className="count" title={g.count_exact ? undefined : "at least this many"}>
                    {g.count.toLocaleString("en")}
                    {g.count_exact ? "" : "+"}
                  </span>
                </h2>
                {results.length === 0 ? (
                  <Empty>No {group} found.</Empty>
                ) : (
                  <ul className="hits">
                    {results.map((hit) => (
                      <Hit key={hit.id} hit={hit} kind={group} />
                    ))}
                  </ul>
                )}
                {results.length < g.count && (
                  <button type="button" className="secondary" onClick={() => void loadMore(group)}>
                    More {group}
                  </button>
                )}
              </section>
            );
          })}
        </div>
      )}
    </main>
  );
}
