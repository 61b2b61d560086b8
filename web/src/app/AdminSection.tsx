// The admin console: a side navigation (ADMIN_NAV) and the admin pages, all under /admin/.
// Only admins reach it (App.tsx sends everyone else away; the API refuses them too).

import { lazy, Suspense } from "react";
import { Navigate, NavLink, Route, Routes } from "react-router";
import { Loading } from "../components/States";
import { ADMIN_NAV } from "./adminNav";

const page = <K extends string>(load: () => Promise<Record<K, React.ComponentType>>, name: K) =>
  lazy(() => load().then((m) => ({ default: m[name] })));

const AgentsPage = page(() => import("../features/admin/AgentsPage"), "AgentsPage");
const TeamsPage = page(() => import("../features/admin/TeamsPage"), "TeamsPage");
const AuditPage = page(() => import("../features/admin/AuditPage"), "AuditPage");
const ProjectionsPage = page(() => import("../features/admin/ProjectionsPage"), "ProjectionsPage");
const SettingsPage = page(() => import("../features/admin/SettingsPage"), "SettingsPage");
const CustomersPage = page(() => import("../features/admin/CustomersPage"), "CustomersPage");
const CustomerPage = page(() => import("../features/admin/CustomersPage"), "CustomerPage");

export function AdminSection() {
  return (
    <div className="admin">
      <nav aria-label="Admin" className="admin-nav">
        <h2 className="small muted">Admin</h2>
        {ADMIN_NAV.map((entry) => (
          <NavLink key={entry.to} to={entry.to}>
            {entry.label}
          </NavLink>
        ))}
      </nav>
      <main id="main" className="admin-main">
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route index element={<Navigate to="agents" replace />} />
            <Route path="agents" element={<AgentsPage />} />
            <Route path="teams" element={<TeamsPage />} />
            <Route path="customers" element={<CustomersPage />} />
            <Route path="customers/:customerId" element={<CustomerPage />} />
            <Route path="audit" element={<AuditPage />} />
            <Route path="projections" element={<ProjectionsPage />} />
            <Route path="settings" element={<SettingsPage />} />
            <Route path="*" element={<h1>Page not found</h1>} />
          </Routes>
        </Suspense>
      </main>
    </div>
  );
}
