import { useState, type FormEvent, type ReactNode } from "react";
import { Link, NavLink, useNavigate } from "react-router";
import { NotificationCentre, Toasts } from "../features/notifications/NotificationCentre";
import { useAuth } from "../lib/auth";
import { useConnectionState } from "../lib/realtime-react";

function SearchBox() {
  const navigate = useNavigate();
  const [q, setQ] = useState("");
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (q.trim()) void navigate(`/search?q=${encodeURIComponent(q.trim())}`);
  }
  return (
    <form role="search" className="search-box" onSubmit={onSubmit}>
      <label htmlFor="global-search" className="sr-only">
        Search tickets, messages and customers
      </label>
      <input
        id="global-search"
        type="search"
        placeholder="Search…"
        value={q}
        onChange={(e) => setQ(e.target.value)}
      />
      <button type="submit">Search</button>
    </form>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const { me, isStaff, signOut } = useAuth();
  const connection = useConnectionState();
  return (
    <>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          Deskstream
        </Link>
        <nav aria-label="Main">
          {isStaff && <NavLink to="/agent">Desk</NavLink>}
          {me?.role === "admin" && <NavLink to="/admin">Admin</NavLink>}
          {me?.role === "admin" && <NavLink to="/admin/analytics">Analytics</NavLink>}
          <NavLink to="/tickets" end>
            {isStaff ? "All tickets" : "My tickets"}
          </NavLink>
        </nav>
        <SearchBox />
        <span
          className={`connection connection-${connection}`}
          title={`Live updates: ${connection}`}
          data-testid="connection"
        >
          <span className="dot" aria-hidden="true" />
          <span className="sr-only">Live updates {connection}</span>
        </span>
        <NotificationCentre />
        <span className="user muted">
          {me?.name || me?.email} <span className="role">({me?.role})</span>
        </span>
        <button type="button" className="secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      {children}
      <Toasts />
    </>
  );
}
