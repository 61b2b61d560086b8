// The admin console's sections, in the order of its side navigation. A new admin page is one
// entry here and one route in AdminSection.tsx (both under /admin/).

export interface AdminNavEntry {
  to: string;
  label: string;
}

export const ADMIN_NAV: AdminNavEntry[] = [
  { to: "/admin/agents", label: "Agents" },
  { to: "/admin/teams", label: "Teams" },
  { to: "/admin/customers", label: "Customers" },
  { to: "/admin/audit", label: "Audit" },
  { to: "/admin/projections", label: "Projections" },
  { to: "/admin/settings", label: "Settings" },
];
