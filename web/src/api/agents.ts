import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { command, request } from "../lib/api";
import type { AgentWorkload, Availability } from "../lib/types";

export function useAgents(enabled: boolean) {
  return useQuery({
    queryKey: ["agents"],
    queryFn: () => request<AgentWorkload[]>("/api/agents/workload", { consistent: true }),
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
