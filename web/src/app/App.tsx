import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { BrowserRouter, Link, Navigate, Route, Routes, useLocation } from "react-router";
import { Loading } from "../components/States";
import { SignInPage } from "../features/auth/SignInPage";
import { CustomerDashboard } from "../features/tickets/CustomerDashboard";
import { TicketDetailPage } from "../features/tickets/TicketDetail";
import { TicketListSection } from "../features/tickets/TicketListSection";
import { ApiError } from "../lib/api";
import { AuthProvider, useAuth } from "../lib/auth";
import { RealtimeProvider } from "../lib/realtime-react";
import { ToastProvider } from "../lib/toast";
import { Layout } from "./Layout";

// Pages most users open later load on demand, keeping the first page small.
const AnalyticsPage = lazy(() =>
  import("../features/analytics/AnalyticsPage").then((m) => ({ default: m.AnalyticsPage })),
);
const AgentDashboard = lazy(() =>
  import("../features/agent/AgentDashboard").then((m) => ({ default: m.AgentDashboard })),
);
const HistoryPage = lazy(() =>
  import("../features/history/HistoryPage").then((m) => ({ default: m.HistoryPage })),
);
const AdminSection = lazy(() =>
  import("./AdminSection").then((m) => ({ default: m.AdminSection })),
);
const RatePage = lazy(() =>
  import("../features/satisfaction/RatePage").then((m) => ({ default: m.RatePage })),
);
const MacrosPage = lazy(() =>
  import("../features/macros/MacrosPage").then((m) => ({ default: m.MacrosPage })),
);
const SearchPage = lazy(() =>
  import("../features/search/SearchPage").then((m) => ({ default: m.SearchPage })),
);

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 15_000,
        retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
        refetchOnWindowFocus: false,
      },
    },
  });
}

function AppRoutes() {
  const { me, loading, isStaff } = useAuth();
  const { pathname } = useLocation();
  const isAdmin = me?.role === "admin";
  // A resolution e-mail's rating link: its signed token is the credential, no sign-in.
  if (pathname === "/rate")
    return (
      <Suspense fallback={<Loading />}>
        <RatePage />
      </Suspense>
    );
  if (loading) return <Loading label="Signing in…" />;
  if (!me) return <SignInPage />;
  return (
    <RealtimeProvider signedIn>
      <Layout>
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route path="/" element={<Navigate to={isStaff ? "/agent" : "/tickets"} replace />} />
            <Route
              path="/tickets"
              element={
                isStaff ? (
                  <main id="main">
                    <TicketListSection title="All tickets" />
                  </main>
                ) : (
                  <main id="main">
                    <CustomerDashboard />
                  </main>
                )
              }
            />
            <Route path="/tickets/:ticketId" element={<TicketDetailPage />} />
            <Route path="/tickets/:ticketId/history" element={<HistoryPage />} />
            <Route
              path="/agent"
              element={isStaff ? <AgentDashboard /> : <Navigate to="/tickets" replace />}
            />
            <Route path="/search" element={<SearchPage />} />
            <Route
              path="/macros"
              element={isStaff ? <MacrosPage /> : <Navigate to="/tickets" replace />}
            />
            <Route
              path="/admin/analytics"
              element={isAdmin ? <AnalyticsPage /> : <Navigate to="/" replace />}
            />
            <Route
              path="/admin/*"
              element={isAdmin ? <AdminSection /> : <Navigate to="/" replace />}
            />
            <Route
              path="*"
              element={
                <main id="main" className="not-found">
                  <h1>Page not found</h1>
                  <p>There is no page at this address. It may have moved, or the link is wrong.</p>
                  <p>
                    <Link to="/">Go to {isStaff ? "the desk" : "your tickets"}</Link> or use the
                    search above.
                  </p>
                </main>
              }
            />
          </Routes>
        </Suspense>
      </Layout>
    </RealtimeProvider>
  );
}

export function App() {
  const [client] = useState(makeQueryClient);
  return (
    <QueryClientProvider client={client}>
      <ToastProvider>
        <AuthProvider>
          <BrowserRouter>
            <AppRoutes />
          </BrowserRouter>
        </AuthProvider>
      </ToastProvider>
    </QueryClientProvider>
  );
}
