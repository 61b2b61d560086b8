import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { describe, expect, it, vi } from "vitest";
import type { Ticket } from "../lib/types";
import { AttachmentList } from "./AttachmentList";
import { PriorityBadge, StatusBadge } from "./Badges";
import { Filters } from "./Filters";
import { MessageBubble } from "./MessageBubble";
import { Empty, ErrorState, Loading } from "./States";
import { VirtualTicketList } from "./VirtualTicketList";
import { ApiError } from "../lib/api";

function tickets(n: number): Ticket[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`,
    customer_id: "5",
    subject: `Ticket ${i}`,
    description: "",
    status: "open",
    priority: "low",
    tags: [],
    language: "en",
    assigned_agent_id: null,
    version: 1,
    position: i + 1,
    created_at: "2026-11-26T10:00:00Z",
    updated_at: "2026-11-26T10:00:00Z",
    last_message_at: null,
    resolved_at: null,
    closed_at: null,
    message_count: 0,
    attachments: [],
    sla_first_response_due: null,
    sla_resolution_due: null,
    satisfaction_rating: null,
    satisfaction_comment: "",
    satisfaction_at: null,
  }));
}

describe("shared components", () => {
  it("labels statuses and priorities", () => {
    render(
      <>
        <StatusBadge status="waiting_on_customer" />
        <PriorityBadge priority="urgent" />
      </>,
    );
    expect(screen.getByText("Waiting on customer")).toHaveClass("status-waiting_on_customer");
    expect(screen.getByLabelText("Priority: Urgent")).toHaveClass("priority-urgent");
  });

  it("has loading, empty and error states, the error with a retry", async () => {
    const retry = vi.fn();
    render(
      <>
        <Loading />
        <Empty>Nothing here.</Empty>
        <ErrorState error={new ApiError(500, "server_error", "Boom")} onRetry={retry} />
      </>,
    );
    expect(screen.getByRole("status")).toHaveTextContent("Loading");
    expect(screen.getByText("Nothing here.")).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("Boom");
    await userEvent.click(screen.getByRole("button", { name: "Retry" }));
    expect(retry).toHaveBeenCalledOnce();
  });

  it("renders only the visible rows of a long list and loads more near its end", async () => {
    const more = vi.fn();
    render(
      <MemoryRouter>
        <VirtualTicketList
          label="Tickets"
          tickets={tickets(1000)}
          hasMore
          loadingMore={false}
          onLoadMore={more}
        />
      </MemoryRouter>,
    );
    const rows = screen.getAllByRole("listitem");
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.length).toBeLessThan(40);
    expect(screen.getByText("1000 tickets loaded")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Load more" }));
    expect(more).toHaveBeenCalled();
  });

  it("changes filters and clears them", async () => {
    const change = vi.fn();
    const { rerender } = render(<Filters value={{}} onChange={change} />);
    await userEvent.selectOptions(screen.getByLabelText("Status"), "resolved");
    expect(change).toHaveBeenLastCalledWith({ status: ["resolved"] });
    rerender(<Filters value={{ priority: ["high"] }} onChange={change} />);
    await userEvent.click(screen.getByRole("button", { name: "Clear filters" }));
    expect(change).toHaveBeenLastCalledWith({});
  });

  it("shows a message's attachments and marks internal notes", () => {
    render(
      <MessageBubble
        mine={false}
        authorName="Ada"
        message={{
          id: "m",
          version: 2,
          author_id: "2",
          author_role: "agent",
          body: "See logs",
          internal: true,
          posted_at: "2026-11-26T10:00:00Z",
          attachments: [{ name: "log.txt", size: 2048 }],
        }}
      />,
    );
    expect(screen.getByRole("article", { name: "Internal note by Ada" })).toBeInTheDocument();
    expect(screen.getByText(/log\.txt/)).toBeInTheDocument();
    expect(screen.getByText("(2.0 kB)")).toBeInTheDocument();
    render(<AttachmentList attachments={[]} />);
  });
});
