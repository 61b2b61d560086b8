// Who is signed in: tokens from lib/api, the user from GET /api/auth/me.

import { useQuery, useQueryClient } from "@tanstack/react-query";
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { refreshTokens, request, tokens } from "./api";
import type { AccessToken, Me } from "./types";

interface AuthValue {
  me: Me | null;
  loading: boolean;
  isStaff: boolean;
  demoSignIn: (email: string) => Promise<void>;
  /** Finish a social sign-in: trade its one-time code for the API's tokens. */
  exchangeSignInCode: (code: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const access = useSyncExternalStore(
    (l) => tokens.subscribe(l),
    () => tokens.access,
  );
  // A new tab (or a reload) of a signed-in browser: the access token is only in memory,
  // so it asks for one with the session cookie before deciding who is signed in.
  const [resuming, setResuming] = useState(() => tokens.access === null && tokens.hasSession);
  useEffect(() => {
    if (!resuming) return;
    void refreshTokens().finally(() => setResuming(false));
  }, [resuming]);
  const me = useQuery({
    queryKey: ["me"],
    queryFn: () => request<Me>("/api/auth/me"),
    enabled: access !== null,
    staleTime: Infinity,
    retry: false,
  });

  const demoSignIn = useCallback(
    async (email: string) => {
      const answer = await request<AccessToken>("/api/auth/demo-login", {
        method: "POST",
        body: { email, cookie: true },
      });
      client.clear();
      tokens.set(answer.access);
    },
    [client],
  );

  const exchangeSignInCode = useCallback(
    async (code: string) => {
      const answer = await request<AccessToken>("/api/auth/exchange", {
        method: "POST",
        body: { code, cookie: true },
      });
      client.clear();
      tokens.set(answer.access);
    },
    [client],
  );

  const signOut = useCallback(async () => {
    const signedIn = tokens.hasSession;
    tokens.set(null);
    client.clear();
    // The cookie ends the session on the server, which also clears it.
    if (signedIn) {
      await request("/api/auth/logout", { method: "POST", body: {} }).catch(() => undefined);
    }
  }, [client]);

  const value = useMemo<AuthValue>(() => {
    const user = access ? (me.data ?? null) : null;
    return {
      me: user,
      loading: resuming || (access !== null && me.isPending),
      isStaff: user?.role === "agent" || user?.role === "admin",
      demoSignIn,
      exchangeSignInCode,
      signOut,
    };
  }, [access, resuming, me.data, me.isPending, demoSignIn, exchangeSignInCode, signOut]);

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}
