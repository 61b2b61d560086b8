import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { tokens } from "../../lib/api";
import { FakeSocket, json, mockFetch, renderApp } from "../../test/utils";
import { SignInPage } from "./SignInPage";

beforeEach(() => {
  FakeSocket.all = [];
});
afterEach(() => vi.unstubAllGlobals());

describe("sign-in", () => {
  it("offers the demo sign-in in demo mode, asking for the refresh cookie", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/providers": () => ({ demo: true, providers: [] }),
      "POST /api/auth/demo-login": (req) =>
        (req.body as { email: string }).email === "maria@acme.test"
          ? { access: "a", token_type: "Bearer", expires_in: 600 }
          : json({}, 400),
    });
    renderApp(<SignInPage />, { me: null });
    await userEvent.click(await screen.findByRole("button", { name: "Sign in" }));
    expect(screen.getByRole("alert")).toHaveTextContent("Enter an e-mail address.");
    await userEvent.type(screen.getByLabelText("E-mail"), "maria@acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(tokens.access).toBe("a"));
    const signIn = calls.find((c) => c.path === "/api/auth/demo-login");
    expect(signIn?.body).toEqual({ email: "maria@acme.test", cookie: true });
    expect({ ...localStorage }).toEqual({ "deskstream.session": "1" });
  });

  it("shows social providers and no demo form outside demo mode", async () => {
    mockFetch({
      "GET /api/auth/providers": () => ({
        demo: false,
        providers: [{ id: "gh", name: "GitHub", url: "/auth/gh" }],
      }),
    });
    renderApp(<SignInPage />, { me: null });
    expect(await screen.findByRole("link", { name: "Continue with GitHub" })).toHaveAttribute(
      "href",
      "/auth/gh",
    );
    expect(screen.queryByLabelText("E-mail")).not.toBeInTheDocument();
  });

  it("exchanges a social sign-in's one-time code from the URL fragment once, then drops it", async () => {
    window.history.replaceState(null, "", "/#signin_code=one-time");
    const { calls } = mockFetch({
      "GET /api/auth/providers": () => ({ demo: false, providers: [] }),
      "POST /api/auth/exchange": () => ({ access: "a", token_type: "Bearer", expires_in: 600 }),
    });
    renderApp(<SignInPage />, { me: null });
    await waitFor(() => expect(tokens.access).toBe("a"));
    expect(window.location.hash).toBe("");
    const exchanges = calls.filter((c) => c.path === "/api/auth/exchange");
    expect(exchanges.map((c) => c.body)).toEqual([{ code: "one-time", cookie: true }]);
  });

  it("says why a social sign-in failed, naming the provider", async () => {
    window.history.replaceState(null, "", "/#signin_error=email_unverified&provider=oidc");
    mockFetch({
      "GET /api/auth/providers": () => ({
        demo: false,
        providers: [{ id: "oidc", name: "Acme ID", url: "/api/auth/login/oidc" }],
      }),
    });
    renderApp(<SignInPage />, { me: null });
    expect(await screen.findByTestId("signin-error")).toHaveTextContent(
      "Your e-mail address at Acme ID is not verified. Verify it there, then sign in again.",
    );
    expect(window.location.hash).toBe("");
  });

  it("shows the API's answer when a one-time code is refused", async () => {
    window.history.replaceState(null, "", "/#signin_code=used-up");
    mockFetch({
      "GET /api/auth/providers": () => ({ demo: false, providers: [] }),
      "POST /api/auth/exchange": () =>
        json(
          { error: "code_invalid", detail: "This sign-in code has expired. Sign in again." },
          401,
        ),
    });
    renderApp(<SignInPage />, { me: null });
    expect(await screen.findByTestId("signin-error")).toHaveTextContent(
      "This sign-in code has expired. Sign in again.",
    );
  });
});
