import { describe, expect, it } from "vitest";
import { savedValues } from "../../api/macros";
import { mergeThread } from "../../api/tickets";
import type { FilledMacro, Message } from "../../lib/types";
import { describeChanges } from "./MacroPicker";

function message(id: string, version: number, extra: Partial<Message> = {}): Message {
  return {
    id,
    version,
    author_id: "1",
    author_role: "agent",
    body: `m${id}`,
    internal: false,
    attachments: [],
    posted_at: "2026-12-06T10:00:00Z",
    ...extra,
  };
}

describe("macros and saved filters", () => {
  it("keep what a frame brought when the refetched thread lags behind", () => {
    const current = [message("a", 2), message("b", 3), message("p", 9, { pending: true })];
    const fetched = [message("a", 2, { body_html: "<p>ma</p>" })];
    const merged = mergeThread(current, fetched);
    expect(merged.map((m) => [m.id, m.body_html])).toEqual([
      ["a", "<p>ma</p>"],
      ["b", undefined],
    ]);
  });

  it("say what a macro will change, assignment first and status last", () => {
    const filled: FilledMacro = {
      id: "m",
      name: "Done",
      body: "Hi",
      status: "resolved",
      add_tags: ["kb", "toner"],
      assign_to: "7",
      assign_to_name: "Ada",
    };
    expect(describeChanges(filled)).toEqual([
      "assign to Ada",
      "add tags kb, toner",
      "status Resolved",
    ]);
    expect(describeChanges({ ...filled, status: null, add_tags: [], assign_to: null })).toEqual([]);
  });

  it("save only the filters the list sends, and no 'all' view", () => {
    expect(savedValues({ status: ["open"], tags: ["vip"], sort: "-created_at" }, "all")).toEqual({
      status: ["open"],
      tags: ["vip"],
    });
    expect(savedValues({}, "mine")).toEqual({ view: "mine" });
  });
});
