import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { Link, NavLink, useLocation, useNavigate, useSearchParams } from "react-router";
import { NotificationCentre, Toasts } from "../features/notifications/NotificationCentre";
import { useAuth } from "../lib/auth";
import { useConnectionState } from "../lib/realtime-react";

function SearchBox() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const { pathname } = useLocation();
  const urlQ = pathname === "/search" ? (params.get("q") ?? "") : "";
  const [q, setQ] = useState(urlQ);
  // /search?q= opened directly (or by Back) shows its query in the box.
  const [shown, setShown] = useState(urlQ);
  if (urlQ !== shown) {
    setShown(urlQ);
    if (urlQ) setQ(urlQ);
  }
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

const SHORTCUTS: [string, string][] = [
  ["?", "Show this list"],
  ["j", "Next ticket in my queue"],
  ["r", "Reply"],
  ["n", "Internal note"],
  ["a", "Assign to me"],
  ["s", "Change status"],
  ["Ctrl/⌘ + Enter", "Send"],
  ["Esc", "Close this list"],
];

function ShortcutsOverlay({ onClose }: { onClose: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    close.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="dialog-backdrop" onClick={onClose}>
      <div
        className="dialog shortcuts"
        role="dialog"
        aria-modal="true"
        aria-labelledby="shortcuts-title"
        onClick={(e) => e.stopPropagation()}
      >
        <h2 id="shortcuts-title">Keyboard shortcuts</h2>
        <dl>
          {SHORTCUTS.map(([key, what]) => (
            <div key={key} className="row">
              <dt>
                <kbd>{key}</kbd>
              </dt>
              <dd>{what}</dd>
            </div>
          ))}
        </dl>
        <button type="button" ref={close} onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}

/** Live updates went away after working: say so (a grey dot is easy to miss). */
function OutageBanner({ connection }: { connection: string }) {
  const [wasOpen, setWasOpen] = useState(false);
  if (connection === "open" && !wasOpen) setWasOpen(true);
  if (!wasOpen || connection === "open") return null;
  return (
    <div className="outage-banner" role="status" data-testid="outage-banner">
      Live updates are interrupted; reconnecting… What you see may be out of date. Reload to check.
    </div>
  );
}

/** Move focus to the page's heading after sign-in and on every page change, so keyboard
 * and screen-reader users start at the new content (not on a button that went away). */
function useFocusOnNavigation() {
  const { pathname } = useLocation();
  useEffect(() => {
    let tries = 0;
    let timer = 0;
    const focus = () => {
      const heading = document.querySelector<HTMLElement>("main h1, main h2");
      if (heading) {
        if (document.activeElement && document.activeElement !== document.body) {
          // Something in the new page took focus already (a form field): keep it.
          if (document.querySelector("main")?.contains(document.activeElement)) return;
        }
        heading.tabIndex = -1;
        heading.focus({ preventScroll: true });
      } else if (tries++ < 50) timer = window.setTimeout(focus, 100);
    };
    focus();
    return () => clearTimeout(timer);
  }, [pathname]);
}

export function Layout({ children }: { children: ReactNode }) {
  const { me, isStaff, signOut } = useAuth();
  const connection = useConnectionState();
  const [help, setHelp] = useState(false);
  useFocusOnNavigation();
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName))) return;
      if (e.key === "?") {
        e.preventDefault();
        setHelp(true);
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
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
          {isStaff && <NavLink to="/macros">Macros</NavLink>}
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
      <OutageBanner connection={connection} />
      {children}
      <Toasts />
      {help && <ShortcutsOverlay onClose={() => setHelp(false)} />}
    </>
  );
}
