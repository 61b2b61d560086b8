// Test helpers: a fake fetch routed by "METHOD /path", a fake WebSocket, and a render with
// every provider the app has (signed in as the given user).

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, render } from "@testing-library/react";
import type { ReactNode } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import { vi } from "vitest";
import { Toasts } from "../features/notifications/NotificationCentre";
import { tokens } from "../lib/api";
import { AuthProvider } from "../lib/auth";
import { RealtimeClient, type SocketLike } from "../lib/realtime";
import { RealtimeProvider } from "../lib/realtime-react";
import { ToastProvider } from "../lib/toast";
import type { Me } from "../lib/types";

export interface FakeRequest {
  method: string;
  path: string;
  url: string;
  body: unknown;
  headers: Record<string, string>;
}

/** Answers a request: a Response, a JSON body, or a promise of either. */
type Handler = (req: FakeRequest) => unknown;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** Install a fake fetch. Handlers return a Response or a JSON body (200). */
export function mockFetch(handlers: Record<string, Handler>) {
  const calls: FakeRequest[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const parsed = new URL(url, "http://localhost");
    const req: FakeRequest = {
      method: (init.method ?? "GET").toUpperCase(),
      path: parsed.pathname,
      url,
      body: typeof init.body === "string" ? (JSON.parse(init.body) as unknown) : undefined,
      headers: (init.headers as Record<string, string>) ?? {},
    };
    calls.push(req);
    const handler = handlers[`${req.method} ${req.path}`];
    if (!handler)
      return json({ error: "not_found", detail: `no fake for ${req.method} ${req.path}` }, 404);
    const out = await handler(req);
    return out instanceof Response ? out : json(out);
  });
  vi.stubGlobal("fetch", fn);
  return { fn, calls };
}

export class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closedWith: number | null = null;

  constructor(public url: string) {
    FakeSocket.all.push(this);
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }

  receive(frame: Record<string, unknown>): void {
    this.receiveText(JSON.stringify(frame));
  }

  receiveText(data: string): void {
    this.onmessage?.(new MessageEvent("message", { data }));
  }

  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code } as CloseEvent);
  }

  /** The newest socket, opened and greeted by the server's "ready" frame. */
  static ready(userId: string, role: string, position: number): FakeSocket {
    const socket = FakeSocket.last();
    act(() => socket.open());
    act(() => socket.receive({ type: "ready", user_id: userId, role, expires_at: 0, position }));
    return socket;
  }

  static last(): FakeSocket {
    const socket = FakeSocket.all[FakeSocket.all.length - 1];
    if (!socket) throw new Error("no socket");
    return socket;
  }
}

export const CUSTOMER: Me = {
  id: 5,
  email: "maria@acme.test",
  name: "Maria",
  role: "customer",
  may_set_priority: false,
};
export const AGENT: Me = {
  id: 2,
  email: "agent.ada@deskstream.test",
  name: "Ada Lovelace",
  role: "agent",
  may_set_priority: true,
};

export function renderApp(
  ui: ReactNode,
  {
    me = CUSTOMER,
    route = "/",
    path = "*",
    realtime,
  }: { me?: Me | null; route?: string; path?: string; realtime?: RealtimeClient } = {},
) {
  if (me) tokens.set("access-token");
  const client = new QueryClient({
    defaultOptions: { queries: { retry: false }, mutations: { retry: false } },
  });
  const socketClient =
    realtime ?? new RealtimeClient("ws://test/ws/", (url) => new FakeSocket(url));
  const result = render(
    <QueryClientProvider client={client}>
      <ToastProvider>
        <AuthProvider>
          <RealtimeProvider signedIn={Boolean(me)} client={socketClient}>
            <MemoryRouter initialEntries={[route]}>
              <Routes>
                <Route path={path} element={ui} />
              </Routes>
              <Toasts />
            </MemoryRouter>
          </RealtimeProvider>
        </AuthProvider>
      </ToastProvider>
    </QueryClientProvider>,
  );
  return { ...result, client, realtime: socketClient };
}
