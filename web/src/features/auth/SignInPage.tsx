import { useQuery } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { ErrorState, Loading } from "../../components/States";
import { errorMessage, request, tokens } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import type { Providers } from "../../lib/types";

const DEMO_USERS = [
  ["maria@acme.test", "Maria (customer)"],
  ["li@globex.test", "Li (customer)"],
  ["agent.ada@deskstream.test", "Ada (agent)"],
  ["agent.bob@deskstream.test", "Bob (agent)"],
  ["admin@deskstream.test", "Admin"],
] as const;

// What a failed social sign-in's `#signin_error=<code>` means to the person (ADR 0038).
const SOCIAL_ERRORS: Record<string, (provider: string) => string> = {
  access_denied: (p) => `You cancelled the sign-in at ${p}.`,
  provider_unreachable: (p) => `${p} could not be reached. Try again in a moment.`,
  signin_expired: () =>
    "The sign-in took too long or was started in another tab. Please sign in again.",
  email_unverified: (p) =>
    `Your e-mail address at ${p} is not verified. Verify it there, then sign in again.`,
  email_missing: (p) =>
    `${p} did not share your e-mail address. Allow it, or use another way to sign in.`,
  user_inactive: () => "This account is disabled. Ask an administrator.",
  provider_error: (p) => `${p} could not complete the sign-in. Please try again.`,
};

interface SignInResult {
  code: string | null;
  error: string | null;
  provider: string | null;
}

/** A social sign-in's result, from the URL fragment the API redirected to. */
function readSignInResult(): SignInResult | null {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const code = params.get("signin_code");
  const error = params.get("signin_error");
  if (!code && !error) return null;
  return { code, error, provider: params.get("provider") };
}

// Codes already sent: a one-time code is exchanged once, even if an effect runs twice.
const exchanged = new Set<string>();

export function SignInPage() {
  const { demoSignIn, exchangeSignInCode } = useAuth();
  const providers = useQuery({
    queryKey: ["providers"],
    queryFn: () => request<Providers>("/api/auth/providers"),
    staleTime: Infinity,
  });
  const [email, setEmail] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [result] = useState(readSignInResult);
  const [exchangeError, setExchangeError] = useState<string | null>(null);

  useEffect(() => {
    if (!result) return;
    // The code must not stay in the address bar or the history, where it could be copied.
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    const code = result.code;
    if (!code || exchanged.has(code)) return;
    exchanged.add(code);
    exchangeSignInCode(code).catch((e: unknown) => setExchangeError(errorMessage(e)));
  }, [result, exchangeSignInCode]);

  if (result?.code && exchangeError === null) return <Loading label="Signing in…" />;
  const providerName =
    providers.data?.providers.find((p) => p.id === result?.provider)?.name ?? "The provider";
  const socialError =
    exchangeError ??
    (result?.error ? (SOCIAL_ERRORS[result.error]?.(providerName) ?? result.error) : null);

  async function signIn(address: string) {
    setBusy(true);
    setError(null);
    try {
      await demoSignIn(address);
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  }

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.trim())) {
      setError("Enter an e-mail address.");
      return;
    }
    void signIn(email.trim());
  }

  return (
    <main className="signin" id="main">
      <h1>Sign in to Deskstream</h1>
      {socialError && !providers.isPending && (
        <p className="field-error" role="alert" data-testid="signin-error">
          {socialError}
        </p>
      )}
      {tokens.ended && (
        <p className="state state-error" role="alert" data-testid="session-ended">
          Your session ended. Sign in again to carry on: your unsent replies are kept.
        </p>
      )}
      {providers.isPending && <Loading />}
      {providers.isError && (
        <ErrorState error={providers.error} onRetry={() => void providers.refetch()} />
      )}
      {providers.data && (
        <>
          {providers.data.providers.length > 0 && (
            <ul className="providers">
              {providers.data.providers.map((p) => (
                <li key={p.id}>
                  <a className="button" href={p.url}>
                    Continue with {p.name}
                  </a>
                </li>
              ))}
            </ul>
          )}
          {providers.data.demo ? (
            <section aria-labelledby="demo-title" className="card">
              <h2 id="demo-title">Demo sign-in</h2>
              <p className="muted">
                Demo mode: sign in as any e-mail, no password. A new address becomes a customer.
              </p>
              <form onSubmit={onSubmit} noValidate>
                <label htmlFor="email">E-mail</label>
                <div className="row">
                  <input
                    id="email"
                    type="email"
                    autoComplete="email"
                    value={email}
                    onChange={(e) => setEmail(e.target.value)}
                    aria-invalid={error ? true : undefined}
                    aria-describedby={error ? "signin-error" : undefined}
                  />
                  <button type="submit" disabled={busy}>
                    Sign in
                  </button>
                </div>
                {error && (
                  <p id="signin-error" className="field-error" role="alert">
                    {error}
                  </p>
                )}
              </form>
              <p>Or pick a demo user:</p>
              <ul className="demo-users">
                {DEMO_USERS.map(([address, label]) => (
                  <li key={address}>
                    <button
                      type="button"
                      className="secondary"
                      disabled={busy}
                      onClick={() => void signIn(address)}
                    >
                      {label}
                    </button>
                  </li>
                ))}
              </ul>
            </section>
          ) : (
            providers.data.providers.length === 0 && (
              <p role="alert">
                No sign-in method is configured on this server. Ask an administrator.
              </p>
            )
          )}
        </>
      )}
    </main>
  );
}
