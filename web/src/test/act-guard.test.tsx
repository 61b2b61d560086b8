// The act() guard of the test setup sees React's warning (and only it): a state update the
// test did not wrap is recorded, so the setup's afterEach fails the test.

import { act, render, screen } from "@testing-library/react";
import { useEffect, useState } from "react";
import { describe, expect, it } from "vitest";
import { silently, takeActWarnings } from "./act-guard";

let setCount: (n: number) => void = () => undefined;

function Counter() {
  const [count, setCountState] = useState(0);
  useEffect(() => {
    setCount = setCountState;
  }, []);
  return <p>count {count}</p>;
}

describe("act() guard", () => {
  it("records a state update made outside act()", async () => {
    render(<Counter />);
    silently(() => setCount(1)); // as a timer or socket callback would, unseen by the test
    // Taken here, so this test passes; left in place, the setup's afterEach would fail it.
    expect(takeActWarnings()).toEqual([expect.stringContaining("not wrapped in act(")]);
    expect(await screen.findByText("count 1")).toBeInTheDocument();
  });

  it("records nothing for updates inside act() or other console errors", () => {
    render(<Counter />);
    act(() => setCount(2));
    expect(screen.getByText("count 2")).toBeInTheDocument();
    silently(() => console.error("an unrelated error"));
    expect(takeActWarnings()).toEqual([]);
  });
});
