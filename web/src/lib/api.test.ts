import { afterEach, describe, expect, it, vi } from "vitest";
import { json, mockFetch } from "../test/utils";
import { ApiError, command, errorMessage, refreshTokens, request, tokens } from "./api";
import { nextStatuses } from "./lifecycle";

afterEach(() => vi.unstubAllGlobals());

describe("api client", () => {
  it("refreshes once for concurrent expired requests, by cookie, then retries them", async () => {
    tokens.set("old");
    let refreshes = 0;
    const { calls } = mockFetch({
      "GET /api/auth/me": (req) =>
        req.headers.Authorization === "Bearer new"
          ? { id: 1 }
          : json({ error: "token_expired", detail: "" }, 401),
      "POST /api/auth/refresh": () => {
        refreshes += 1;
        return { access: "new", token_type: "Bearer", expires_in: 600 };
      },
    });
    const results = await Promise.all([request("/api/auth/me"), request("/api/auth/me")]);
    expect(results).toEqual([{ id: 1 }, { id: 1 }]);
    expect(refreshes).toBe(1);
    expect(calls.find((c) => c.path === "/api/auth/refresh")?.body).toEqual({});
    expect(tokens.access).toBe("new");
  });

  it("keeps no token in localStorage, only that a session exists", () => {
    tokens.set("secret-access");
    expect({ ...localStorage }).toEqual({ "deskstream.session": "1" });
    tokens.set(null);
    expect({ ...localStorage }).toEqual({});
  });

  it("a new tab of a signed-in browser gets its access token by cookie", async () => {
    tokens.set(null);
    localStorage.setItem("deskstream.session", "1"); // another tab signed in
    mockFetch({
      "POST /api/auth/refresh": () => ({ access: "tab2", token_type: "Bearer", expires_in: 600 }),
    });
    expect(await refreshTokens()).toBe(true);
    expect(tokens.access).toBe("tab2");
  });

  it("asks nothing without a session, and signs out when the cookie is refused", async () => {
    tokens.set(null);
    const { calls } = mockFetch({
      "POST /api/auth/refresh": () => json({ error: "session_revoked", detail: "" }, 401),
    });
    expect(await refreshTokens()).toBe(false);
    expect(calls).toHaveLength(0);
    tokens.set("a");
    expect(await refreshTokens()).toBe(false);
    expect(tokens.access).toBeNull();
    expect(tokens.hasSession).toBe(false);
  });

  it("signs out when another tab signs out", () => {
    tokens.set("a");
    localStorage.removeItem("deskstream.session");
    window.dispatchEvent(
      new StorageEvent("storage", { key: "deskstream.session", newValue: null }),
    );
    expect(tokens.access).toBeNull();
  });

  it("signs out when the session is revoked", async () => {
    tokens.set("a");
    mockFetch({
      "GET /api/tickets": () => json({ error: "session_revoked", detail: "gone" }, 401),
    });
    await expect(request("/api/tickets")).rejects.toBeInstanceOf(ApiError);
    expect(tokens.access).toBeNull();
  });

  it("reads its own writes: reads after a command carry ?after=<position>", async () => {
    tokens.set("a");
    const { calls } = mockFetch({
      "POST /api/tickets": () => json({ id: "t", version: 1, position: 4242 }, 201),
      "GET /api/tickets": () => ({ results: [] }),
    });
    await command("/api/tickets", { method: "POST", body: { subject: "x" } });
    await request("/api/tickets?status=open", { consistent: true });
    expect(calls[1]?.url).toBe("/api/tickets?status=open&after=4242");
  });

  it("asks a consistent read again while the server answers it stale", async () => {
    vi.useFakeTimers();
    try {
      tokens.set("a");
      let asked = 0;
      mockFetch({
        "GET /api/notifications": () => {
          asked += 1;
          return asked < 3
            ? json({ results: [] }, 200, { "X-Deskstream-Stale": "true" })
            : json({ results: [{ id: "n1" }] });
        },
      });
      const answer = request("/api/notifications", { consistent: true });
      await vi.runAllTimersAsync();
      expect(await answer).toEqual({ results: [{ id: "n1" }] });
      expect(asked).toBe(3);
      // A read that is not consistent takes the first answer, stale or not.
      asked = 0;
      const once = request("/api/notifications");
      await vi.runAllTimersAsync();
      expect(await once).toEqual({ results: [] });
      expect(asked).toBe(1);
    } finally {
      vi.useRealTimers();
    }
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
