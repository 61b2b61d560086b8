// Agents: invite, deactivate/reactivate, role, capacity, skills, languages, working hours.

import { useState, type FormEvent } from "react";
import {
  cursorOf,
  useAdminAgents,
  useInvite,
  useSetActive,
  useSetProfile,
  useSetRole,
  useSetWorkingHours,
} from "../../api/admin";
import { Empty, ErrorState, Loading } from "../../components/States";
import { errorMessage } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { formatTime } from "../../lib/format";
import { useToasts } from "../../lib/toast";
import type { AdminAgent, StaffRole } from "../../lib/types";

const list = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

function InviteForm() {
  const invite = useInvite();
  const { push } = useToasts();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [role, setRole] = useState<StaffRole>("agent");
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    invite.mutate(
      { email, name, role },
      {
        onSuccess: (user) => {
          push(`Invited ${user.email}: they sign in with a provider using this e-mail.`, "success");
          setEmail("");
          setName("");
        },
      },
    );
  }
  return (
    <form className="card row" onSubmit={onSubmit} aria-label="Invite an agent">
      <label>
        E-mail
        <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value as StaffRole)}>
          <option value="agent">Agent</option>
          <option value="admin">Admin</option>
        </select>
      </label>
      <button type="submit" disabled={invite.isPending}>
        Invite
      </button>
      {invite.error && <p className="field-error">{errorMessage(invite.error)}</p>}
    </form>
  );
}

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"];

function hoursText(agent: AdminAgent): string {
  const hours = agent.working_hours as {
    time_zone: string;
    weekly_hours: Record<string, string[][]>;
  } | null;
  if (!hours) return "";
  const first = Object.values(hours.weekly_hours)[0]?.[0];
  return first ? `${first[0]}-${first[1]} ${hours.time_zone}` : hours.time_zone;
}

function AgentRow({ agent, self }: { agent: AdminAgent; self: boolean }) {
  const setActive = useSetActive();
  const setRole = useSetRole();
  const setProfile = useSetProfile();
  const setHours = useSetWorkingHours();
  const { push } = useToasts();
  const [capacity, setCapacity] = useState(String(agent.capacity ?? 5));
  const [skills, setSkills] = useState(agent.skills.join(", "));
  const [languages, setLanguages] = useState(agent.languages.join(", "));
  const [hours, setHoursText] = useState(hoursText(agent));
  const fail = (e: unknown) => push(errorMessage(e), "error");

  function saveProfile() {
    setProfile.mutate(
      {
        id: agent.id,
        change: { capacity: Number(capacity), skills: list(skills), languages: list(languages) },
      },
      { onSuccess: () => push(`Saved ${agent.name}'s profile.`, "success"), onError: fail },
    );
    const match = /^(\d\d:\d\d)-(\d\d:\d\d)\s+(\S+)$/.exec(hours.trim());
    if (hours.trim() !== hoursText(agent)) {
      const value = match
        ? {
            time_zone: match[3],
            weekly_hours: Object.fromEntries(WEEKDAYS.map((d) => [d, [[match[1], match[2]]]])),
          }
        : null;
      if (hours.trim() && !match) {
        push("Working hours: write e.g. 09:00-17:00 Europe/Berlin (Monday to Friday).", "error");
        return;
      }
      setHours.mutate({ id: agent.id, hours: value }, { onError: fail });
    }
  }

  return (
    <tr data-testid={`agent-${agent.id}`}>
      <td>
        <strong>{agent.name}</strong>
        <div className="small muted">{agent.email}</div>
        {agent.invited_at && (
          <div className="small muted">invited {formatTime(agent.invited_at)}</div>
        )}
      </td>
      <td>
        <select
          aria-label={`Role of ${agent.name}`}
          value={agent.role}
          disabled={self}
          onChange={(e) =>
            setRole.mutate({ id: agent.id, role: e.target.value as StaffRole }, { onError: fail })
          }
        >
          <option value="agent">Agent</option>
          <option value="admin">Admin</option>
        </select>
      </td>
      <td>
        {agent.is_active ? "Active" : "Deactivated"}
        {!self && (
          <button
            type="button"
            className="secondary"
            onClick={() =>
              setActive.mutate({ id: agent.id, active: !agent.is_active }, { onError: fail })
            }
          >
            {agent.is_active ? "Deactivate" : "Reactivate"}
          </button>
        )}
      </td>
      <td>
        <input
          aria-label={`Capacity of ${agent.name}`}
          type="number"
          min={0}
          max={200}
          value={capacity}
          onChange={(e) => setCapacity(e.target.value)}
          className="narrow"
        />
      </td>
      <td>
        <input
          aria-label={`Skills of ${agent.name}`}
          value={skills}
          onChange={(e) => setSkills(e.target.value)}
        />
      </td>
      <td>
        <input
          aria-label={`Languages of ${agent.name}`}
          value={languages}
          onChange={(e) => setLanguages(e.target.value)}
          className="narrow"
        />
      </td>
      <td>
        <input
          aria-label={`Working hours of ${agent.name}`}
          placeholder="any time"
          value={hours}
          onChange={(e) => setHoursText(e.target.value)}
        />
      </td>
      <td>{agent.teams.map((t) => t.name).join(", ") || <span className="muted">none</span>}</td>
      <td>
        <button type="button" onClick={saveProfile} disabled={setProfile.isPending}>
          Save
        </button>
      </td>
    </tr>
  );
}

export function AgentsPage() {
  const [cursor, setCursor] = useState<string | null>(null);
  const agents = useAdminAgents(cursor);
  const { me } = useAuth();
  return (
    <>
      <h1>Agents</h1>
      <InviteForm />
      {agents.isPending ? (
        <Loading />
      ) : agents.error ? (
        <ErrorState error={agents.error} onRetry={() => void agents.refetch()} />
      ) : agents.data.results.length === 0 ? (
        <Empty>No agents yet: invite one.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="admin-table">
            <thead>
              <tr>
                <th>Agent</th>
                <th>Role</th>
                <th>Status</th>
                <th>Capacity</th>
                <th>Skills</th>
                <th>Languages</th>
                <th>Working hours</th>
                <th>Teams</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {agents.data.results.map((a) => (
                <AgentRow
                  key={`${a.id}-${a.capacity}-${a.skills.join()}-${a.languages.join()}`}
                  agent={a}
                  self={String(me?.id) === a.id}
                />
              ))}
            </tbody>
          </table>
          <div className="row">
            {agents.data.previous && (
              <button
                type="button"
                className="secondary"
                onClick={() => setCursor(cursorOf(agents.data.previous))}
              >
                Previous
              </button>
            )}
            {agents.data.next && (
              <button
                type="button"
                className="secondary"
                onClick={() => setCursor(cursorOf(agents.data.next))}
              >
                Next
              </button>
            )}
          </div>
        </div>
      )}
    </>
  );
}
