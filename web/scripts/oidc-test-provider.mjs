// A real OpenID provider on 127.0.0.1 for the social sign-in tests (tests/e2e/test_social_signin.py):
// the certified `oidc-provider` package with its development login and consent pages, which
// accept any login name and password. The account is the login name, taken as its e-mail
// address; one that starts with "unverified." has `email_verified: false`.
//
// Environment: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (comma-separated).
// It prints "ready <issuer>" once it listens, and stops on SIGTERM.

import { randomBytes } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: (process.env.OIDC_REDIRECT_URIS ?? "").split(",").filter(Boolean),
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "given_name", "family_name"],
  },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  pkce: { required: () => true },
  findAccount(ctx, id) {
    const local = id.split("@")[0].replace(/^unverified\./, "");
    return {
      accountId: id,
      claims: () => ({
        sub: id,
        email: id,
        email_verified: !id.startsWith("unverified."),
        name: `${local} Tester`,
        given_name: local,
        family_name: "Tester",
      }),
    };
  },
});

const server = provider.listen(port, "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
});
