// AI drafts (docs/api.md#ai-drafts): ask for one; its text streams over the WebSocket
// (stream `drafts`), and the answer carries the draft as it is when the request returns.
import { useMutation } from "@tanstack/react-query";
import { request } from "../lib/api";
import type { DraftRequested } from "../lib/types";

export function useRequestDraft(ticketId: string) {
  return useMutation({
    mutationFn: (options: { allowInternal: boolean }) =>
      request<DraftRequested>(`/api/tickets/${ticketId}/drafts`, {
        method: "POST",
        body: { allow_internal: options.allowInternal },
      }),
  });
}
