import { afterEach, describe, expect, it, vi } from "vitest";
import { json, mockFetch } from "../test/utils";
import { ApiError, command, errorMessage, request, tokens } from "./api";
import { nextStatuses } from "./lifecycle";

afterEach(() => vi.unstubAllGlobals());

describe("api client", () => {
  it("refreshes once for concurrent expired requests, then retries them", async () => {
    tokens.set({ access: "old", refresh: "r1" });
    let refreshes = 0;
    mockFetch({
      "GET /api/auth/me": (req) =>
        req.headers.Authorization === "Bearer new"
          ? { id: 1 }
          : json({ error: "token_expired", detail: "" }, 401),
      "POST /api/auth/refresh": () => {
        refreshes += 1;
        return { access: "new", refresh: "r2" };
      },
    });
    const results = await Promise.all([request("/api/auth/me"), request("/api/auth/me")]);
    expect(results).toEqual([{ id: 1 }, { id: 1 }]);
    expect(refreshes).toBe(1);
    expect(tokens.refresh).toBe("r2");
  });

  it("takes the tokens another tab refreshed instead of reusing its own refresh token", async () => {
    tokens.set({ access: "old", refresh: "r1" });
    localStorage.setItem("deskstream.tokens", JSON.stringify({ access: "fresh", refresh: "r9" }));
    const { calls } = mockFetch({
      "GET /api/auth/me": (req) =>
        req.headers.Authorization === "Bearer fresh"
          ? { id: 1 }
          : json({ error: "token_expired", detail: "" }, 401),
    });
    expect(await request("/api/auth/me")).toEqual({ id: 1 });
    expect(calls.some((c) => c.path === "/api/auth/refresh")).toBe(false);
  });

  it("signs out when the session is revoked", async () => {
    tokens.set({ access: "a", refresh: "r" });
    mockFetch({
      "GET /api/tickets": () => json({ error: "session_revoked", detail: "gone" }, 401),
    });
    await expect(request("/api/tickets")).rejects.toBeInstanceOf(ApiError);
    expect(tokens.access).toBeNull();
  });

  it("reads its own writes: reads after a command carry ?after=<position>", async () => {
    tokens.set({ access: "a", refresh: "r" });
    const { calls } = mockFetch({
      "POST /api/tickets": () => json({ id: "t", version: 1, position: 4242 }, 201),
      "GET /api/tickets": () => ({ results: [] }),
    });
    await command("/api/tickets", { method: "POST", body: { subject: "x" } });
    await request("/api/tickets?status=open", { consistent: true });
    expect(calls[1]?.url).toBe("/api/tickets?status=open&after=4242");
  });

  it("turns field errors into one readable message", () => {
    const error = new ApiError(400, "invalid", "bad", {
      fields: { subject: ["This field may not be blank."] },
    });
    expect(errorMessage(error)).toBe("subject: This field may not be blank.");
    expect(errorMessage(new ApiError(404, "not_found", "x"))).toMatch(/Not found/);
  });
});

describe("lifecycle", () => {
  it("offers only the moves the server accepts for the role", () => {
    expect(nextStatuses({ status: "assigned", assigned_agent_id: "2" }, "agent")).toEqual([
      "in_progress",
      "resolved",
    ]);
    expect(nextStatuses({ status: "assigned", assigned_agent_id: "2" }, "customer")).toEqual([
      "resolved",
    ]);
    expect(nextStatuses({ status: "open", assigned_agent_id: null }, "admin")).toEqual([
      "resolved",
      "closed",
    ]);
    expect(nextStatuses({ status: "resolved", assigned_agent_id: null }, "customer")).toEqual([
      "open",
      "closed",
    ]);
    expect(nextStatuses({ status: "closed", assigned_agent_id: null }, "admin")).toEqual([]);
  });
});
