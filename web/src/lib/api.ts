// The one HTTP client: JSON, bearer tokens with single-flight refresh, errors as ApiError,
// and read-your-writes (every read model GET carries ?after=<newest position this tab knows>).

import { textOf } from "./format";
import type { AccessToken, CommandResult } from "./types";

// The access token lives in this tab's memory only; the refresh token in an HttpOnly cookie
// that only the server reads and sets (ADR 0033), so a script injected into the page can
// steal neither for later. localStorage keeps one non-secret flag: that this browser has a
// session (a new tab then asks for an access token), and its removal signs out every tab.
const SESSION_KEY = "deskstream.session";
const SERVER_TROUBLE = "Something went wrong on our side. Try again in a moment.";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public body: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** Field errors of a 400 invalid: {field: [messages]}. */
  get fields(): Record<string, string[]> {
    return (this.body.fields as Record<string, string[]> | undefined) ?? {};
  }
}

type Listener = () => void;

class TokenStore {
  private accessToken: string | null = null;
  private listeners = new Set<Listener>();
  /** The session ended without the user signing out (expired, revoked): the sign-in page
   * says so. */
  ended = false;

  constructor() {
    // Another tab signed out: so does this one.
    globalThis.addEventListener?.("storage", (e: StorageEvent) => {
      if (e.key !== SESSION_KEY || e.newValue) return;
      this.accessToken = null;
      this.listeners.forEach((l) => l());
    });
  }

  get access(): string | null {
    return this.accessToken;
  }

  /** Whether this browser signed in and has not signed out (its cookie may still be valid). */
  get hasSession(): boolean {
    try {
      return globalThis.localStorage?.getItem(SESSION_KEY) === "1";
    } catch {
      return this.accessToken !== null;
    }
  }

  /** A new access token (signed in or refreshed), or null (signed out; `ended`: the session
   * ended by itself, not by the user). */
  set(access: string | null, ended = false): void {
    this.ended = access === null && ended;
    this.accessToken = access;
    try {
      if (access) localStorage.setItem(SESSION_KEY, "1");
      else localStorage.removeItem(SESSION_KEY);
    } catch {
      // Private mode: this tab alone knows.
    }
    this.listeners.forEach((l) => l());
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export const tokens = new TokenStore();

// The newest event-store position this tab has seen (command answers, WebSocket frames).
let knownPosition = 0;
export function notePosition(position: number | null | undefined): void {
  if (typeof position === "number" && position > knownPosition) knownPosition = position;
}
export function getKnownPosition(): number {
  return knownPosition;
}

/** ``fn`` while holding the browser-wide refresh lock: tabs refresh one after the other,
 * each sending the cookie the previous one received (a refresh token used twice revokes
 * the whole session). */
function oneTabAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const locks = globalThis.navigator?.locks;
  if (!locks) return fn();
  return locks.request("deskstream.refresh", fn) as Promise<T>;
}

let refreshing: Promise<boolean> | null = null;

/** A new access token for the session cookie, once however many requests ask at the same
 * time. False when there is no session (then the user is signed out). */
export function refreshTokens(): Promise<boolean> {
  if (!refreshing) {
    refreshing = oneTabAtATime(async () => {
      if (!tokens.hasSession) return false;
      const response = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
        credentials: "same-origin",
      });
      if (!response.ok) {
        // Refused (expired, revoked, or the cookie is gone): the session has ended. A rate
        // limit or a server error is not an answer about the session.
        if (response.status >= 400 && response.status < 500 && response.status !== 429)
          tokens.set(null, true);
        return false;
      }
      tokens.set(((await response.json()) as AccessToken).access);
      return true;
    }).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Add ?after=<known position> (read models wait until they caught up with it). */
  consistent?: boolean;
  signal?: AbortSignal;
}

export interface ApiResponse<T> {
  data: T;
  headers: Headers;
}

/** A consistent read the server answered stale (its projection had not reached ?after= in
 * its wait) is asked again this many times, after these pauses: what the tab knows it
 * should see (a frame's notification, its own command) arrives a moment later on a busy
 * server, instead of never, as the answer would stay until something else refetched. */
export const STALE_RETRY_DELAYS_MS = [250, 500, 1000];

function withAfter(path: string): string {
  if (knownPosition <= 0 || /[?&]after=/.test(path)) return path;
  return `${path}${path.includes("?") ? "&" : "?"}after=${knownPosition}`;
}

export async function requestRaw<T>(
  path: string,
  options: RequestOptions = {},
): Promise<ApiResponse<T>> {
  const url = options.consistent ? withAfter(path) : path;
  const send = () => {
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (tokens.access) headers.Authorization = `Bearer ${tokens.access}`;
    return fetch(url, {
      method: options.method ?? "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  };
  let response = await send();
  if (response.status === 401 && tokens.hasSession) {
    const body = (await response
      .clone()
      .json()
      .catch(() => ({}))) as { error?: string };
    if (body.error === "token_expired" && (await refreshTokens())) response = await send();
  }
  if (options.consistent) {
    for (const pause of STALE_RETRY_DELAYS_MS) {
      if (!response.ok || response.headers.get("X-Deskstream-Stale") !== "true") break;
      if (options.signal?.aborted) break;
      await new Promise((resolve) => setTimeout(resolve, pause));
      response = await send();
    }
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON: a proxy's or the server's own error page. Never show its markup.
      data = {
        error: response.status >= 500 ? "server_error" : "bad_response",
        detail:
          response.status >= 500
            ? SERVER_TROUBLE
            : "The server answered something unexpected. Try again.",
      };
    }
  }
  if (!response.ok) {
    const body = (data ?? {}) as Record<string, unknown>;
    if (
      response.status === 401 &&
      ["session_revoked", "token_invalid", "refresh_reused", "user_inactive"].includes(
        String(body.error),
      )
    ) {
      tokens.set(null, true);
    }
    throw new ApiError(
      response.status,
      textOf(body.error, `http_${response.status}`),
      textOf(body.detail, response.statusText || "Request failed"),
      body,
    );
  }
  return { data: data as T, headers: response.headers };
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  return (await requestRaw<T>(path, options)).data;
}

/** A command: remembers the position it answers so the following reads include it. */
export async function command(path: string, options: RequestOptions): Promise<CommandResult> {
  const result = await request<CommandResult>(path, options);
  notePosition(result.position);
  return result;
}

export function query(
  params: Record<string, string | number | string[] | undefined | null>,
): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) search.set(key, value.join(","));
    } else search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 404) return "Not found: it does not exist or you may not see it.";
    const fields = Object.entries(error.fields)
      .map(([field, messages]) => `${field}: ${messages.join(" ")}`)
      .join("; ");
    return fields || error.message;
  }
  if (error instanceof TypeError) return "The server could not be reached.";
  return error instanceof Error ? error.message : String(error);
}
