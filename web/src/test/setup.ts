import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

// Tests of Node code (`// @vitest-environment node`) have no DOM to set up or clean.
const dom = typeof window !== "undefined";

afterEach(() => {
  if (!dom) return;
  cleanup();
  localStorage.clear();
});

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
