import { act, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { ToastProvider, useToasts } from "../lib/toast";
import { formatSpan, slaState } from "./SlaBadge";

const NOW = Date.parse("2026-12-06T12:00:00Z");
const at = (minutes: number) => new Date(NOW + minutes * 60_000).toISOString();

describe("SLA badge", () => {
  it("counts down to the next target, warns within the hour, and says when it is overdue", () => {
    const base = { status: "open" as const, sla_breaches: [] as string[] };
    expect(
      slaState({ ...base, sla_first_response_due: at(130), sla_resolution_due: at(600) }, NOW),
    ).toEqual({ tone: "ok", text: "First reply due in 2 h 10 min" });
    expect(
      slaState({ ...base, sla_first_response_due: null, sla_resolution_due: at(30) }, NOW),
    ).toEqual({ tone: "soon", text: "Resolution due in 30 min" });
    expect(
      slaState({ ...base, sla_first_response_due: at(-5), sla_resolution_due: at(60) }, NOW),
    ).toEqual({ tone: "breached", text: "First reply overdue by 5 min" });
    expect(
      slaState(
        {
          ...base,
          sla_breaches: ["first_response"],
          sla_first_response_due: null,
          sla_resolution_due: null,
        },
        NOW,
      ),
    ).toEqual({ tone: "breached", text: "SLA breached" });
    expect(
      slaState(
        { ...base, status: "resolved", sla_first_response_due: at(5), sla_resolution_due: null },
        NOW,
      ),
    ).toBeNull();
    expect(formatSpan(3 * 24 * 3_600_000 + 2 * 3_600_000)).toBe("3 d 2 h");
  });
});

function Pusher() {
  const { push, toasts } = useToasts();
  return (
    <>
      <button onClick={() => push("New ticket: A", "info", "/tickets/1", { key: "ticket:1" })}>
        new
      </button>
      <button onClick={() => push("Assigned to you", "info", "/tickets/1", { key: "ticket:1" })}>
        assigned
      </button>
      <button onClick={() => push(`Other ${toasts.length}`, "info")}>other</button>
      <ul>
        {toasts.map((t) => (
          <li key={t.id}>{t.text}</li>
        ))}
      </ul>
    </>
  );
}

describe("toasts", () => {
  it("keep one toast per key and at most three", async () => {
    render(
      <ToastProvider timeout={60_000}>
        <Pusher />
      </ToastProvider>,
    );
    await userEvent.click(screen.getByRole("button", { name: "new" }));
    await userEvent.click(screen.getByRole("button", { name: "assigned" }));
    expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "Assigned to you",
    ]);
    for (let i = 0; i < 4; i++)
      await act(() => userEvent.click(screen.getByRole("button", { name: "other" })));
    expect(screen.getAllByRole("listitem")).toHaveLength(3);
  });
});
