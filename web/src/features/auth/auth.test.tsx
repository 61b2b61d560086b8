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
  it("offers the demo sign-in in demo mode and stores the tokens", async () => {
    mockFetch({
      "GET /api/auth/providers": () => ({ demo: true, providers: [] }),
      "POST /api/auth/demo-login": (req) =>
        (req.body as { email: string }).email === "maria@acme.test"
          ? { access: "a", refresh: "r" }
          : json({}, 400),
    });
    renderApp(<SignInPage />, { me: null });
    await userEvent.click(await screen.findByRole("button", { name: "Sign in" }));
    expect(screen.getByRole("alert")).toHaveTextContent("Enter an e-mail address.");
    await userEvent.type(screen.getByLabelText("E-mail"), "maria@acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(tokens.access).toBe("a"));
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
});
