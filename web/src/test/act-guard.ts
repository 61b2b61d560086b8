// React's act() warnings fail the test that caused them: an update outside act() is one the
// test did not wait for, so what it asserts may run before React has rendered it.

import { format } from "node:util";

const ACT_WARNING = /\bact\(/;
const warnings: string[] = [];
let installed = false;
let quiet = false;

/** Record every console.error that is an act() warning (and still print it). */
export function installActGuard(): void {
  if (installed) return;
  installed = true;
  const original = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    const text = format(...args);
    if (ACT_WARNING.test(text)) warnings.push(text.split("\n")[0] ?? text);
    if (!quiet) original(...args);
  };
}

/** The act() warnings printed since the last call (and forget them). */
export function takeActWarnings(): string[] {
  return warnings.splice(0);
}

/** Run `fn` with console.error recorded but not printed (for the guard's own tests). */
export function silently(fn: () => void): void {
  quiet = true;
  try {
    fn();
  } finally {
    quiet = false;
  }
}
