// The one HTTP client: JSON, bearer tokens with single-flight refresh, errors as ApiError,
// and read-your-writes (every read model GET carries ?after=<newest position this tab knows>).

import { textOf } from "./format";
import type { CommandResult, TokenPair } from "./types";

const STORAGE_KEY = "deskstream.tokens";

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
  private pair: Pick<TokenPair, "access" | "refresh"> | null = null;
  private listeners = new Set<Listener>();

  constructor() {
    this.pair = TokenStore.stored();
    // Another tab signed in, out, or refreshed: take its tokens (a refresh token used twice
    // would revoke the session, so tabs must not keep stale ones).
    globalThis.addEventListener?.("storage", (e: StorageEvent) => {
      if (e.key !== STORAGE_KEY) return;
      this.pair = TokenStore.stored();
      this.listeners.forEach((l) => l());
    });
  }

  static stored(): Pick<TokenPair, "access" | "refresh"> | null {
    try {
      const raw = globalThis.localStorage?.getItem(STORAGE_KEY);
      return raw ? (JSON.parse(raw) as TokenPair) : null;
    } catch {
      return null;
    }
  }

  /** Tokens another tab stored since this one read them, if any. */
  adoptNewer(): boolean {
    const stored = TokenStore.stored();
    if (stored && stored.access !== this.pair?.access) {
      this.pair = stored;
      this.listeners.forEach((l) => l());
      return true;
    }
    return false;
  }

  get access(): string | null {
    return this.pair?.access ?? null;
  }

  get refresh(): string | null {
    return this.pair?.refresh ?? null;
  }

  set(pair: Pick<TokenPair, "access" | "refresh"> | null): void {
    this.pair = pair;
    try {
      if (pair) localStorage.setItem(STORAGE_KEY, JSON.stringify(pair));
      else localStorage.removeItem(STORAGE_KEY);
    } catch {
      // Private mode: keep the tokens in memory only.
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

let refreshing: Promise<boolean> | null = null;

/** Exchange the refresh token once, however many requests ask at the same time (a refresh
 * token used twice revokes the whole session). */
export function refreshTokens(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      if (tokens.adoptNewer()) return true;
      if (!tokens.refresh) return false;
      const response = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh: tokens.refresh }),
      });
      if (!response.ok) {
        tokens.set(null);
        return false;
      }
      tokens.set((await response.json()) as TokenPair);
      return true;
    })().finally(() => {
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
  if (response.status === 401 && tokens.refresh) {
    const body = (await response
      .clone()
      .json()
      .catch(() => ({}))) as { error?: string };
    if (body.error === "token_expired" && (await refreshTokens())) response = await send();
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: "bad_response", detail: text.slice(0, 200) };
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
      tokens.set(null);
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
