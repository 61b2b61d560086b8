// Generated from domain/lifecycle.py by `make web-generate`
// (python -m domain.lifecycle --ts); a unit test fails when the two differ. Do not edit.

export const STATUSES = ["open", "assigned", "in_progress", "waiting_on_customer", "resolved", "closed"] as const;
export const PRIORITIES = ["low", "medium", "high", "urgent"] as const;
export const ROLES = ["customer", "agent", "admin", "system"] as const;
export const TRIGGERS = ["status command", "assignment", "unassignment", "customer reply"] as const;

export interface Transition {
  from: (typeof STATUSES)[number];
  to: (typeof STATUSES)[number];
  trigger: (typeof TRIGGERS)[number];
  roles: readonly (typeof ROLES)[number][];
  note: string;
}

/** Every status change a ticket may make; any other move is refused (HTTP 409). */
export const TRANSITIONS: readonly Transition[] = [
  { from: "open", to: "assigned", trigger: "assignment", roles: ["agent", "admin", "system"], note: "an agent is assigned" },
  { from: "assigned", to: "open", trigger: "unassignment", roles: ["agent", "admin", "system"], note: "the agent is removed" },
  { from: "in_progress", to: "open", trigger: "unassignment", roles: ["agent", "admin", "system"], note: "the agent is removed" },
  { from: "waiting_on_customer", to: "open", trigger: "unassignment", roles: ["agent", "admin", "system"], note: "the agent is removed" },
  { from: "assigned", to: "in_progress", trigger: "status command", roles: ["agent", "admin"], note: "the agent starts work" },
  { from: "in_progress", to: "waiting_on_customer", trigger: "status command", roles: ["agent", "admin"], note: "agent asks the customer" },
  { from: "waiting_on_customer", to: "in_progress", trigger: "status command", roles: ["agent", "admin"], note: "agent resumes work" },
  { from: "waiting_on_customer", to: "in_progress", trigger: "customer reply", roles: ["customer"], note: "the customer answers" },
  { from: "open", to: "resolved", trigger: "status command", roles: ["customer", "agent", "admin"], note: "" },
  { from: "assigned", to: "resolved", trigger: "status command", roles: ["customer", "agent", "admin"], note: "" },
  { from: "in_progress", to: "resolved", trigger: "status command", roles: ["customer", "agent", "admin"], note: "" },
  { from: "waiting_on_customer", to: "resolved", trigger: "status command", roles: ["customer", "agent", "admin"], note: "" },
  { from: "resolved", to: "in_progress", trigger: "customer reply", roles: ["customer"], note: "reopened by the customer's reply (agent still assigned)" },
  { from: "resolved", to: "open", trigger: "customer reply", roles: ["customer"], note: "reopened by the customer's reply (no agent assigned)" },
  { from: "resolved", to: "in_progress", trigger: "status command", roles: ["customer", "agent", "admin"], note: "reopen (agent assigned)" },
  { from: "resolved", to: "open", trigger: "status command", roles: ["customer", "agent", "admin"], note: "reopen (no agent assigned)" },
  { from: "resolved", to: "closed", trigger: "status command", roles: ["customer", "agent", "admin", "system"], note: "" },
  { from: "open", to: "closed", trigger: "status command", roles: ["admin"], note: "" },
  { from: "assigned", to: "closed", trigger: "status command", roles: ["admin"], note: "" },
  { from: "in_progress", to: "closed", trigger: "status command", roles: ["admin"], note: "" },
  { from: "waiting_on_customer", to: "closed", trigger: "status command", roles: ["admin"], note: "" },
];
