// Customer satisfaction (CSAT), the ticket's notification e-mails and the SLA e-mail choice
// (docs/api.md, ADR 0047).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { command, request } from "../lib/api";
import type { EmailPreferences, RatingLink, TicketEmailList } from "../lib/types";
import { keys } from "./tickets";

export function useTicketEmails(ticketId: string, enabled: boolean) {
  return useQuery({
    queryKey: ["ticket-emails", ticketId],
    queryFn: () => request<TicketEmailList>(`/api/tickets/${ticketId}/emails`),
    enabled,
    refetchInterval: 15_000,
  });
}

export function useRate(ticketId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: { rating: number; comment?: string }) =>
      command(`/api/tickets/${ticketId}/satisfaction`, { method: "POST", body }),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: keys.ticket(ticketId) });
      void client.invalidateQueries({ queryKey: keys.history(ticketId) });
    },
  });
}

export function fetchRatingLink(token: string): Promise<RatingLink> {
  return request<RatingLink>(`/api/satisfaction/link?token=${encodeURIComponent(token)}`);
}

export function rateByLink(body: { token: string; rating: number; comment?: string }) {
  return request(`/api/satisfaction/link`, { method: "POST", body });
}

export function useEmailPreferences(enabled: boolean) {
  return useQuery({
    queryKey: ["email-preferences"],
    queryFn: () => request<EmailPreferences>("/api/me/email-preferences"),
    enabled,
  });
}

export function useSaveEmailPreferences() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: EmailPreferences) =>
      request<EmailPreferences>("/api/me/email-preferences", { method: "PUT", body }),
    onSuccess: (data) => client.setQueryData(["email-preferences"], data),
  });
}
