import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeSocket, json, mockFetch } from "../test/utils";
import { getKnownPosition, tokens } from "./api";
import { RealtimeClient } from "./realtime";
import type { EventFrame } from "./types";

function event(sub: string, position: number, version = position): Record<string, unknown> {
  return {
    type: "event",
    sub,
    stream: sub.split(":")[0],
    kind: "message_posted",
    ticket_id: "t1",
    version,
    position,
    time: "",
    data: {},
  };
}

describe("RealtimeClient", () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.useFakeTimers();
    tokens.set("a1");
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  function connected(client: RealtimeClient, position = 100): FakeSocket {
    client.start();
    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: "ready", user_id: "5", role: "customer", expires_at: 0, position });
    return socket;
  }

  it("authenticates with a frame, never in the URL, and subscribes once ready", () => {
    const client = new RealtimeClient(
      "ws://x/ws/",
      (u) => new FakeSocket(u),
      () => 0.5,
    );
    client.subscribe("ticket", {}, { ticketId: "t1", afterVersion: 3 });
    client.start();
    const socket = FakeSocket.last();
    expect(socket.url).toBe("ws://x/ws/");
    socket.open();
    expect(socket.sent).toEqual([{ type: "auth", token: "a1", batch: true }]);
    socket.receive({ type: "ready", user_id: "5", role: "customer", expires_at: 0, position: 100 });
    expect(socket.sent[1]).toEqual({
      type: "subscribe",
      stream: "ticket",
      ticket_id: "t1",
      after_version: 3,
    });
    expect(client.state).toBe("open");
  });

  /** A client on the queue after position 10, connected; the positions its listener saw. */
  function followingTheQueue(): { socket: FakeSocket; seen: number[] } {
    const client = new RealtimeClient("ws://x/ws/", (u) => new FakeSocket(u));
    const seen: number[] = [];
    client.subscribe(
      "queue",
      { onEvent: (f: EventFrame) => seen.push(f.position) },
      { afterPosition: 10 },
    );
    return { socket: connected(client), seen };
  }

  it("drops duplicate and older frames", () => {
    const { socket, seen } = followingTheQueue();
    for (const p of [9, 10, 11, 11, 12, 12, 13]) socket.receive(event("queue", p));
    expect(seen).toEqual([11, 12, 13]);
    expect(getKnownPosition()).toBeGreaterThanOrEqual(13);
  });

  it("takes frames joined into one array in order, as one frame each", () => {
    const { socket, seen } = followingTheQueue();
    socket.receiveText(
      JSON.stringify([event("queue", 11), event("queue", 12), event("queue", 12)]),
    );
    socket.receiveText(JSON.stringify([event("queue", 13)]));
    expect(seen).toEqual([11, 12, 13]);
  });

  it("reconnects with growing back-off and resumes every stream from the last position seen", () => {
    const client = new RealtimeClient(
      "ws://x/ws/",
      (u) => new FakeSocket(u),
      () => 1,
    );
    const seen: number[] = [];
    client.subscribe("queue", { onEvent: (f) => seen.push(f.position) }, { afterPosition: 10 });
    const userResync = vi.fn();
    client.subscribe("user", { onResync: userResync });
    let socket = connected(client, 50);
    expect(userResync).toHaveBeenCalledOnce(); // it had no position: refetch after subscribing
    socket.receive(event("queue", 20));
    socket.drop();
    expect(client.state).toBe("closed");
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(999);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last().drop(); // fails again: the next wait is 2 s
    vi.advanceTimersByTime(1999);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: "ready", user_id: "5", role: "customer", expires_at: 0, position: 60 });
    const subscribes = socket.sent.filter((f) => f.type === "subscribe");
    expect(subscribes).toEqual([
      { type: "subscribe", stream: "queue", after_position: 20 },
      { type: "subscribe", stream: "user", after_position: 50 },
    ]);
    expect(userResync).toHaveBeenCalledOnce(); // it resumed from 50: nothing to refetch
    socket.receive(event("queue", 20)); // replayed duplicate
    socket.receive(event("queue", 21));
    expect(seen).toEqual([20, 21]);
  });

  it("caps the back-off at 30 s with jitter", () => {
    const client = new RealtimeClient(
      "ws://x/ws/",
      (u) => new FakeSocket(u),
      () => 0,
    );
    expect(client.backoffDelay(0)).toBe(500);
    expect(client.backoffDelay(3)).toBe(4000);
    expect(client.backoffDelay(20)).toBe(15000);
    const max = new RealtimeClient(
      "ws://x/ws/",
      (u) => new FakeSocket(u),
      () => 1,
    );
    expect(max.backoffDelay(20)).toBe(30000);
  });

  it("refreshes an expired token and reconnects at once", async () => {
    const { calls } = mockFetch({
      "POST /api/auth/refresh": () => json({ access: "a2", token_type: "Bearer", expires_in: 600 }),
    });
    const client = new RealtimeClient("ws://x/ws/", (u) => new FakeSocket(u));
    connected(client).drop(4401);
    await vi.waitFor(() => expect(FakeSocket.all).toHaveLength(2));
    expect(calls[0]?.body).toEqual({}); // the refresh token is the cookie
    FakeSocket.last().open();
    expect(FakeSocket.last().sent[0]).toEqual({ type: "auth", token: "a2", batch: true });
  });

  it("asks for a resync when the server cannot replay, then follows from its position", () => {
    const client = new RealtimeClient("ws://x/ws/", (u) => new FakeSocket(u));
    const resync = vi.fn();
    client.subscribe("user", { onResync: resync }, { afterPosition: 1 });
    const socket = connected(client);
    socket.receive({ type: "error", error: "resume_unavailable", sub: "user", position: 99000 });
    expect(resync).toHaveBeenCalledOnce();
    expect(socket.sent.at(-1)).toEqual({
      type: "subscribe",
      stream: "user",
      after_position: 99000,
    });
  });

  it("relays typing only for subscribed tickets and unsubscribes the last listener", () => {
    const client = new RealtimeClient("ws://x/ws/", (u) => new FakeSocket(u));
    const off = client.subscribe("ticket", {}, { ticketId: "t1" });
    const socket = connected(client);
    client.typing("t2", false);
    client.typing("t1", true);
    expect(socket.sent.filter((f) => f.type === "typing")).toEqual([
      { type: "typing", ticket_id: "t1", internal: true },
    ]);
    off();
    expect(socket.sent.at(-1)).toEqual({ type: "unsubscribe", sub: "ticket:t1" });
  });
});
