// Toasts: short-lived messages in a polite live region (the notification centre's pop-ups).
// One toast per subject: a toast with the key of one on screen replaces it (a ticket that is
// created, assigned and announced to its agent shows one toast, not four), at most three
// are shown, and they sit in the top corner, clear of the reply box.

import {
  createContext,
  useCallback,
  useContext,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";

export interface Toast {
  id: number;
  key: string;
  text: string;
  tone: "info" | "error" | "success";
  href?: string;
  action?: { label: string; run: () => void };
}

export interface ToastOptions {
  /** Toasts with the same key replace each other (default: the text and link). */
  key?: string;
  action?: Toast["action"];
}

interface ToastValue {
  toasts: Toast[];
  push: (text: string, tone?: Toast["tone"], href?: string, options?: ToastOptions) => void;
  dismiss: (id: number) => void;
  dismissKey: (key: string) => void;
}

const MAX_TOASTS = 3;
const ToastContext = createContext<ToastValue | null>(null);

export function ToastProvider({
  children,
  timeout = 6000,
}: {
  children: ReactNode;
  timeout?: number;
}) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const dismiss = useCallback(
    (id: number) => setToasts((all) => all.filter((t) => t.id !== id)),
    [],
  );
  const dismissKey = useCallback(
    (key: string) => setToasts((all) => all.filter((t) => t.key !== key)),
    [],
  );
  const push = useCallback(
    (text: string, tone: Toast["tone"] = "info", href?: string, options: ToastOptions = {}) => {
      const id = next.current++;
      const key = options.key ?? `${text}|${href ?? ""}`;
      setToasts((all) => [
        ...all.filter((t) => t.key !== key).slice(-(MAX_TOASTS - 1)),
        { id, key, text, tone, href, action: options.action },
      ]);
      setTimeout(() => dismiss(id), timeout);
    },
    [dismiss, timeout],
  );
  const value = useMemo(
    () => ({ toasts, push, dismiss, dismissKey }),
    [toasts, push, dismiss, dismissKey],
  );
  return <ToastContext.Provider value={value}>{children}</ToastContext.Provider>;
}

export function useToasts(): ToastValue {
  const value = useContext(ToastContext);
  if (!value) throw new Error("useToasts outside ToastProvider");
  return value;
}
