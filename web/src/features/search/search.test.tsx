import { render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AGENT, FakeSocket, mockFetch, renderApp } from "../../test/utils";
import { SearchPage, Snippet } from "./SearchPage";

beforeEach(() => {
  FakeSocket.all = [];
});
afterEach(() => vi.unstubAllGlobals());

describe("search", () => {
  it("groups results by tickets, messages and customers", async () => {
    mockFetch({
      "GET /api/auth/me": () => AGENT,
      "GET /api/search": (req) => {
        expect(req.url).toContain("q=printer");
        const hit = (id: string, title: string) => ({
          id,
          ticket_id: id === "c1" ? null : "t1",
          customer_id: "5",
          title,
          snippet: "the <mark>printer</mark> &amp; more",
          internal: false,
          status: null,
          priority: null,
          occurred_at: null,
        });
        return {
          query: "printer",
          groups: {
            tickets: { count: 1, count_exact: true, results: [hit("t1", "Printer on fire")] },
            messages: { count: 1000, count_exact: false, results: [] },
            customers: { count: 1, count_exact: true, results: [hit("c1", "Maria")] },
          },
        };
      },
    });
    renderApp(<SearchPage />, { me: AGENT, route: "/search?q=printer" });
    expect(await screen.findByRole("link", { name: "Printer on fire" })).toBeInTheDocument();
    expect(screen.getByTestId("search-messages")).toHaveTextContent("No messages found.");
    // A count that stopped at the ranking cap reads as a lower bound.
    expect(screen.getByTestId("search-messages")).toHaveTextContent("Messages 1,000+");
    expect(screen.getByTestId("search-tickets")).toHaveTextContent("Tickets 1");
    expect(screen.getByTestId("search-customers")).toHaveTextContent("Maria");
  });

  it("keeps only text and <mark> from snippets", () => {
    const { container } = render(
      <Snippet
        html={"a <mark>b</mark> &lt;script&gt;x&lt;/script&gt; <img src=x onerror=alert(1)>"}
      />,
    );
    expect(container.querySelectorAll("mark")).toHaveLength(1);
    expect(container.querySelector("img")).toBeNull();
    expect(container.textContent).toBe("a b <script>x</script> <img src=x onerror=alert(1)>");
  });
});
