import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterAll, afterEach } from "vitest";
import { installActGuard, takeActWarnings } from "./act-guard";

// Tests of Node code (`// @vitest-environment node`) have no DOM to set up or clean.
const dom = typeof window !== "undefined";

installActGuard();

function failOnActWarnings(): void {
  const warnings = takeActWarnings();
  if (warnings.length) {
    throw new Error(
      `React printed ${warnings.length} act() warning(s): await what updates the state ` +
        `(findBy*, waitFor, act) before asserting.\n${warnings.join("\n")}`,
    );
  }
}

afterEach(() => {
  if (dom) {
    cleanup();
    localStorage.clear();
  }
  failOnActWarnings();
});
// A warning printed after a file's last test (a late timer) fails the file.
afterAll(failOnActWarnings);

// jsdom has no layout: give elements a size so virtualised lists render their first rows.
if (dom) {
  for (const [name, size] of [
    ["offsetHeight", 600],
    ["offsetWidth", 800],
    ["clientHeight", 600],
    ["clientWidth", 800],
  ] as const) {
    Object.defineProperty(HTMLElement.prototype, name, { configurable: true, get: () => size });
  }
}
