// Teams: create, rename, archive or restore, and members. Tickets routed to a team are
// assigned automatically among its members.

import { useState, type FormEvent } from "react";
import { useAdminAgents, useTeamCommand, useTeams } from "../../api/admin";
import { Empty, ErrorState, Loading } from "../../components/States";
import { errorMessage } from "../../lib/api";
import { useToasts } from "../../lib/toast";
import type { AdminAgent, AdminTeam } from "../../lib/types";

function TeamCard({ team, agents }: { team: AdminTeam; agents: AdminAgent[] }) {
  const run = useTeamCommand();
  const { push } = useToasts();
  const [name, setName] = useState(team.name);
  const [adding, setAdding] = useState("");
  const fail = { onError: (e: unknown) => push(errorMessage(e), "error") };
  const members = new Set(team.members.map((m) => m.id));
  return (
    <section className="card" aria-label={`Team ${team.name}`} data-testid="team">
      <div className="row">
        <h2>
          {team.name} {team.archived && <span className="badge">archived</span>}
        </h2>
        <input
          aria-label={`New name of ${team.name}`}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <button
          type="button"
          className="secondary"
          disabled={name.trim() === team.name || !name.trim()}
          onClick={() => run.mutate({ kind: "edit", id: team.id, name }, fail)}
        >
          Rename
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => run.mutate({ kind: "edit", id: team.id, archived: !team.archived }, fail)}
        >
          {team.archived ? "Restore" : "Archive"}
        </button>
      </div>
      <ul className="members">
        {team.members.map((m) => (
          <li key={m.id}>
            {m.name}{" "}
            <button
              type="button"
              className="link-button"
              onClick={() => run.mutate({ kind: "remove", id: team.id, userId: m.id }, fail)}
            >
              Remove {m.name}
            </button>
          </li>
        ))}
        {team.members.length === 0 && <li className="muted">No members yet.</li>}
      </ul>
      {!team.archived && (
        <div className="row">
          <select
            aria-label={`Add a member to ${team.name}`}
            value={adding}
            onChange={(e) => setAdding(e.target.value)}
          >
            <option value="">Choose an agent…</option>
            {agents
              .filter((a) => a.is_active && !members.has(a.id))
              .map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name}
                </option>
              ))}
          </select>
          <button
            type="button"
            disabled={!adding}
            onClick={() =>
              run.mutate(
                { kind: "add", id: team.id, userId: adding },
                { ...fail, onSuccess: () => setAdding("") },
              )
            }
          >
            Add member
          </button>
        </div>
      )}
    </section>
  );
}

export function TeamsPage() {
  const teams = useTeams();
  const agents = useAdminAgents(null);
  const run = useTeamCommand();
  const [name, setName] = useState("");
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    run.mutate({ kind: "create", name }, { onSuccess: () => setName("") });
  }
  return (
    <>
      <h1>Teams</h1>
      <form className="card row" onSubmit={onSubmit} aria-label="Create a team">
        <label>
          Team name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <button type="submit" disabled={run.isPending}>
          Create team
        </button>
        {run.error && <p className="field-error">{errorMessage(run.error)}</p>}
      </form>
      {teams.isPending ? (
        <Loading />
      ) : teams.error ? (
        <ErrorState error={teams.error} onRetry={() => void teams.refetch()} />
      ) : teams.data.results.length === 0 ? (
        <Empty>No teams yet.</Empty>
      ) : (
        [...teams.data.results]
          .sort((a, b) => Number(a.archived) - Number(b.archived) || a.name.localeCompare(b.name))
          .map((t) => (
            <TeamCard key={`${t.id}-${t.version}`} team={t} agents={agents.data?.results ?? []} />
          ))
      )}
    </>
  );
}
