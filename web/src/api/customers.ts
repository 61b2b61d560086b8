// The customer behind a ticket (staff's sidebar) and tickets like one (the similar endpoint).

import { useQuery } from "@tanstack/react-query";
import { request } from "../lib/api";
import type { Customer, SearchHit } from "../lib/types";

export function useCustomer(customerId: string | undefined, enabled: boolean) {
  return useQuery({
    queryKey: ["customer", customerId],
    queryFn: () => request<Customer>(`/api/customers/${customerId}`),
    enabled: enabled && !!customerId,
    staleTime: 60_000,
  });
}

export function useSimilarTickets(ticketId: string, enabled: boolean) {
  return useQuery({
    queryKey: ["similar", ticketId],
    queryFn: () =>
      request<{ ticket_id: string; results: SearchHit[] }>(
        `/api/tickets/${ticketId}/similar?limit=5`,
      ),
    enabled,
    staleTime: 60_000,
    retry: false,
  });
}
