// Projections: each projector's position and lag behind the log, and rebuilds (the admin's
// replay) started here, with their progress live.

import { useProjectors, useRebuilds, useStartRebuild } from "../../api/admin";
import { Empty, ErrorState, Loading } from "../../components/States";
import { errorMessage } from "../../lib/api";
import { formatTime } from "../../lib/format";
import { useToasts } from "../../lib/toast";

export function ProjectionsPage() {
  const projectors = useProjectors();
  const rebuilds = useRebuilds();
  const start = useStartRebuild();
  const { push } = useToasts();
  const running = new Set(
    (rebuilds.data?.results ?? []).filter((r) => r.state === "running").map((r) => r.projector),
  );
  return (
    <>
      <h1>Projections</h1>
      {projectors.isPending ? (
        <Loading />
      ) : projectors.error ? (
        <ErrorState error={projectors.error} onRetry={() => void projectors.refetch()} />
      ) : (
        <table className="admin-table" data-testid="projectors">
          <thead>
            <tr>
              <th>Projector</th>
              <th>Source</th>
              <th>Position</th>
              <th>Lag (events)</th>
              <th>Where</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {projectors.data.map((p) => (
              <tr key={p.name}>
                <td>{p.name}</td>
                <td>{p.source}</td>
                <td>
                  {p.position ?? "?"} <span className="muted small">of {p.head}</span>
                </td>
                <td className={p.lag ? "lagging" : undefined}>{p.lag ?? "?"}</td>
                <td className="small">{p.where}</td>
                <td>
                  <button
                    type="button"
                    disabled={running.has(p.name) || start.isPending}
                    onClick={() =>
                      start.mutate(p.name, {
                        onSuccess: () => push(`Rebuilding ${p.name}…`, "info"),
                        onError: (e) => push(errorMessage(e), "error"),
                      })
                    }
                  >
                    Rebuild {p.name}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Rebuilds</h2>
      {rebuilds.isPending ? (
        <Loading />
      ) : rebuilds.error ? (
        <ErrorState error={rebuilds.error} />
      ) : rebuilds.data.results.length === 0 ? (
        <Empty>No rebuild started from here yet.</Empty>
      ) : (
        <ul className="rebuilds" data-testid="rebuilds">
          {rebuilds.data.results.map((r) => (
            <li key={r.id} className="card">
              <strong>{r.projector}</strong>{" "}
              <span className={`badge rebuild-${r.state}`}>{r.state}</span>{" "}
              <span className="muted small">
                started {formatTime(r.started_at)}
                {r.finished_at && `, finished ${formatTime(r.finished_at)}`}
              </span>
              <div className="row">
                <progress
                  max={Math.max(r.total, 1)}
                  value={r.state === "done" ? Math.max(r.total, 1) : r.done}
                  aria-label={`Rebuild of ${r.projector}`}
                />
                <span className="small">
                  {r.done} / {r.total} events
                  {r.state === "running" && ` · ${Math.round(r.rate)} ev/s`}
                </span>
              </div>
              {r.error && <p className="field-error">{r.error}</p>}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
