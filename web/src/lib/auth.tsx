// Who is signed in: tokens from lib/api, the user from GET /api/auth/me.

import { useQuery, useQueryClient } from "@tanstack/react-query";
import {
  createContext,
  useCallback,
  useContext,
  useMemo,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { request, tokens } from "./api";
import type { Me, TokenPair } from "./types";

interface AuthValue {
  me: Me | null;
  loading: boolean;
  isStaff: boolean;
  demoSignIn: (email: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const access = useSyncExternalStore(
    (l) => tokens.subscribe(l),
    () => tokens.access,
  );
  const me = useQuery({
    queryKey: ["me"],
    queryFn: () => request<Me>("/api/auth/me"),
    enabled: access !== null,
    staleTime: Infinity,
    retry: false,
  });

  const demoSignIn = useCallback(
    async (email: string) => {
      const pair = await request<TokenPair>("/api/auth/demo-login", {
        method: "POST",
        body: { email },
      });
      client.clear();
      tokens.set(pair);
    },
    [client],
  );

  const signOut = useCallback(async () => {
    const refresh = tokens.refresh;
    tokens.set(null);
    client.clear();
    if (refresh)
      await request("/api/auth/logout", { method: "POST", body: { refresh } }).catch(
        () => undefined,
      );
  }, [client]);

  const value = useMemo<AuthValue>(() => {
    const user = access ? (me.data ?? null) : null;
    return {
      me: user,
      loading: access !== null && me.isPending,
      isStaff: user?.role === "agent" || user?.role === "admin",
      demoSignIn,
      signOut,
    };
  }, [access, me.data, me.isPending, demoSignIn, signOut]);

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}
