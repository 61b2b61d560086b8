import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "../lib/api";
import type { NotificationPage } from "../lib/types";

export function useNotifications(enabled: boolean) {
  return useQuery({
    queryKey: ["notifications"],
    queryFn: () =>
      request<NotificationPage>("/api/notifications?page_size=30", { consistent: true }),
    enabled,
  });
}

export function useMarkRead() {
  const client = useQueryClient();
  return useMutation({
    // A notification id, or "all".
    mutationFn: (id: string) =>
      id === "all"
        ? request("/api/notifications/read-all", { method: "POST", body: {} })
        : request(`/api/notifications/${id}/read`, { method: "POST" }),
    onMutate: async (id) => {
      await client.cancelQueries({ queryKey: ["notifications"] });
      const previous = client.getQueryData<NotificationPage>(["notifications"]);
      client.setQueryData<NotificationPage>(["notifications"], (page) => {
        if (!page) return page;
        const results = page.results.map((n) =>
          id === "all" || n.id === id ? { ...n, read: true } : n,
        );
        return {
          ...page,
          results,
          unread_count: id === "all" ? 0 : Math.max(0, page.unread_count - 1),
        };
      });
      return { previous };
    },
    onError: (_e, _id, context) => client.setQueryData(["notifications"], context?.previous),
    onSettled: () => client.invalidateQueries({ queryKey: ["notifications"] }),
  });
}
