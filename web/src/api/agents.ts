import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { command, request } from "../lib/api";
import { useStream } from "../lib/realtime-react";
import type { AgentWorkload, Availability, PresenceFrame, TeamOption } from "../lib/types";

export function useAgents(enabled: boolean) {
  return useQuery({
    queryKey: ["agents"],
    queryFn: () => request<AgentWorkload[]>("/api/agents/workload", { consistent: true }),
    enabled,
    staleTime: 30_000,
  });
}

/** The active teams a ticket can be routed to (staff). */
export function useTeams(enabled: boolean) {
  return useQuery({
    queryKey: ["teams"],
    queryFn: () => request<TeamOption[]>("/api/teams", { consistent: true }),
    enabled,
    staleTime: 30_000,
  });
}

/** Set my availability; the toggle moves at once and back if the server refuses. */
export function useSetAvailability(myId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (availability: Availability) =>
      command("/api/agents/me/availability", { method: "POST", body: { availability } }),
    onMutate: async (availability) => {
      await client.cancelQueries({ queryKey: ["agents"] });
      const previous = client.getQueryData<AgentWorkload[]>(["agents"]);
      client.setQueryData<AgentWorkload[]>(["agents"], (list) =>
        list?.map((a) => (a.user_id === myId ? { ...a, availability } : a)),
      );
      return { previous };
    },
    onError: (_e, _a, context) => client.setQueryData(["agents"], context?.previous),
    onSettled: () => client.invalidateQueries({ queryKey: ["agents"] }),
  });
}

/** Live presence of the agents (stream `presence`, staff only): user id → frame. */
export function usePresence(enabled: boolean): Record<string, PresenceFrame> {
  const [presence, setPresence] = useState<Record<string, PresenceFrame>>({});
  useStream(
    "presence",
    {
      onPresence: (frames, snapshot) =>
        setPresence((all) => {
          const next = snapshot ? {} : { ...all };
          for (const f of frames) next[f.user_id] = f;
          return next;
        }),
    },
    { enabled },
  );
  return presence;
}

/** Whether an agent can take work now: what presence says (a connection and the chosen
 * availability), the one answer the desk and the assign menu both show. An agent with no
 * live connection is offline whatever they last chose. */
export function agentState(
  agent: Pick<AgentWorkload, "user_id" | "availability">,
  presence: Record<string, PresenceFrame>,
): Availability {
  return presence[agent.user_id]?.state ?? "offline";
}
