import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
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

export function SignInPage() {
  const { demoSignIn } = useAuth();
  const providers = useQuery({
    queryKey: ["providers"],
    queryFn: () => request<Providers>("/api/auth/providers"),
    staleTime: Infinity,
  });
  const [email, setEmail] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

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
