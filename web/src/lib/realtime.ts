// One WebSocket per tab (docs/realtime.md): authenticate with a frame (the token stays out of
// URLs), reconnect with back-off (1, 2, 4 ... 30 s, with jitter), and resume every stream from
// the highest position it saw, dropping duplicates, so nothing is missed across a drop.

import { notePosition, refreshTokens, tokens } from "./api";
import type {
  DraftFrame,
  EventFrame,
  PresenceFrame,
  ServerFrame,
  TypingFrame,
  ViewingFrame,
} from "./types";

export type ConnectionState = "connecting" | "open" | "closed";

export interface StreamHandlers {
  onEvent?: (frame: EventFrame) => void;
  onTyping?: (frame: TypingFrame) => void;
  onViewing?: (frame: ViewingFrame) => void;
  onPresence?: (agents: PresenceFrame[], snapshot: boolean) => void;
  /** A frame of an AI draft this user asked for (stream `drafts`). */
  onDraft?: (frame: DraftFrame) => void;
  /** The server could not replay what was missed: refetch over HTTP. */
  onResync?: () => void;
}

interface Subscription {
  key: string;
  frame: Record<string, unknown>;
  /** Highest position delivered (or confirmed by `subscribed`); frames at or below it are dropped. */
  position: number | null;
  /** For ticket streams subscribed by version before any position is known. */
  version: number | null;
  handlers: Set<StreamHandlers>;
}

export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export type StreamName = "ticket" | "queue" | "user" | "presence" | "drafts";

export function subscriptionKey(stream: string, ticketId?: string): string {
  return stream === "ticket" || stream === "drafts" ? `${stream}:${ticketId}` : stream;
}

/** Streams that are live only: never resumed from a position. */
function liveOnly(key: string): boolean {
  return key === "presence" || key.startsWith("drafts:");
}

export class RealtimeClient {
  private socket: SocketLike | null = null;
  private subs = new Map<string, Subscription>();
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;
  private ready = false;
  private stateListeners = new Set<(state: ConnectionState) => void>();
  state: ConnectionState = "closed";

  constructor(
    private url: string,
    private factory: SocketFactory = (u) => new WebSocket(u),
    private random: () => number = Math.random,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000);
    }
    this.setState("closed");
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Subscribe to a stream. `after` is where the caller's HTTP state is up to: a position
   * (`X-Deskstream-Position`) or, for a ticket, a version. Returns the unsubscribe function. */
  subscribe(
    stream: StreamName,
    handlers: StreamHandlers,
    options: {
      ticketId?: string;
      afterPosition?: number | null;
      afterVersion?: number | null;
    } = {},
  ): () => void {
    const key = subscriptionKey(stream, options.ticketId);
    let sub = this.subs.get(key);
    if (!sub) {
      const frame: Record<string, unknown> = { type: "subscribe", stream };
      if (options.ticketId) frame.ticket_id = options.ticketId;
      sub = {
        key,
        frame,
        position: options.afterPosition ?? null,
        version: options.afterVersion ?? null,
        handlers: new Set(),
      };
      this.subs.set(key, sub);
      sub.handlers.add(handlers);
      this.sendSubscribe(sub);
    } else {
      sub.handlers.add(handlers);
    }
    return () => {
      const current = this.subs.get(key);
      if (!current) return;
      current.handlers.delete(handlers);
      if (current.handlers.size === 0) {
        this.subs.delete(key);
        this.send({ type: "unsubscribe", sub: key });
      }
    };
  }

  typing(ticketId: string, internal: boolean): void {
    if (this.subs.has(subscriptionKey("ticket", ticketId))) {
      this.send({ type: "typing", ticket_id: ticketId, internal });
    }
  }

  /** "I have this ticket open" (staff): the server relays it to the ticket's other staff. */
  viewing(ticketId: string): void {
    if (this.subs.has(subscriptionKey("ticket", ticketId))) {
      this.send({ type: "viewing", ticket_id: ticketId });
    }
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    this.stateListeners.forEach((l) => l(state));
  }

  private send(frame: Record<string, unknown>): void {
    if (this.ready && this.socket && this.socket.readyState === 1) {
      this.socket.send(JSON.stringify(frame));
    }
  }

  private sendSubscribe(sub: Subscription): void {
    const frame = { ...sub.frame };
    if (liveOnly(sub.key)) {
      this.send(frame);
      return;
    }
    if (sub.position !== null) frame.after_position = sub.position;
    else if (sub.version !== null) frame.after_version = sub.version;
    this.send(frame);
  }

  private connect(): void {
    const token = tokens.access;
    if (!token) {
      this.setState("closed");
      return;
    }
    this.setState("connecting");
    this.ready = false;
    const socket = this.factory(this.url);
    this.socket = socket;
    // batch: frames that pile up on the server arrive joined as one JSON array (ADR 0057).
    socket.onopen = () =>
      socket.send(JSON.stringify({ type: "auth", token: tokens.access, batch: true }));
    socket.onmessage = (ev) => {
      const data = JSON.parse(String(ev.data)) as ServerFrame | ServerFrame[];
      for (const frame of Array.isArray(data) ? data : [data]) this.handle(frame);
    };
    socket.onerror = () => undefined;
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.ready = false;
      this.setState("closed");
      if (this.stopped) return;
      if (ev.code === 4401) {
        // Expired token: refresh, then reconnect at once. Otherwise the session is gone.
        void refreshTokens().then((ok) => {
          if (ok && !this.stopped) this.connect();
        });
        return;
      }
      this.scheduleReconnect();
    };
  }

  /** 1, 2, 4 ... 30 s, each between half and the full delay. */
  backoffDelay(attempt: number): number {
    const base = Math.min(30_000, 1000 * 2 ** attempt);
    return Math.round(base / 2 + (this.random() * base) / 2);
  }

  private scheduleReconnect(): void {
    const delay = this.backoffDelay(this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private handle(frame: ServerFrame): void {
    switch (frame.type) {
      case "ready":
        this.ready = true;
        this.attempt = 0;
        notePosition(frame.position);
        this.setState("open");
        for (const sub of this.subs.values()) {
          // A stream that never knew where it was starts at the log head of this moment; its
          // owner refetches over HTTP now, after the subscription, so nothing falls between.
          const fresh = sub.position === null && sub.version === null && !liveOnly(sub.key);
          if (fresh) sub.position = frame.position;
          this.sendSubscribe(sub);
          if (fresh) sub.handlers.forEach((h) => h.onResync?.());
        }
        return;
      case "subscribed": {
        const sub = this.subs.get(frame.sub);
        const at = frame.position;
        if (sub && at !== undefined && (sub.position === null || at > sub.position))
          sub.position = at;
        return;
      }
      case "draft":
        this.subs.get(frame.sub)?.handlers.forEach((h) => h.onDraft?.(frame));
        return;
      case "event": {
        const sub = this.subs.get(frame.sub);
        if (!sub) return;
        if (sub.position !== null && frame.position <= sub.position) return; // duplicate
        sub.position = frame.position;
        notePosition(frame.position);
        sub.handlers.forEach((h) => h.onEvent?.(frame));
        return;
      }
      case "typing":
        this.subs.get(frame.sub)?.handlers.forEach((h) => h.onTyping?.(frame));
        return;
      case "viewing":
        this.subs.get(frame.sub)?.handlers.forEach((h) => h.onViewing?.(frame));
        return;
      case "presence_snapshot":
        this.subs.get("presence")?.handlers.forEach((h) => h.onPresence?.(frame.agents, true));
        return;
      case "presence":
        this.subs.get("presence")?.handlers.forEach((h) => h.onPresence?.([frame], false));
        return;
      case "error":
        if (frame.error === "resume_unavailable" && frame.sub) {
          const sub = this.subs.get(frame.sub);
          if (sub) {
            sub.position = frame.position ?? null;
            sub.handlers.forEach((h) => h.onResync?.());
            this.sendSubscribe(sub);
          }
        }
        return;
      default:
        return;
    }
  }
}

export function defaultSocketUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss" : "ws"}://${host}/ws/`;
}
