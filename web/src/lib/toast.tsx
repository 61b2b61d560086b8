// Toasts: short-lived messages in a polite live region (the notification centre's pop-ups).

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
  text: string;
  tone: "info" | "error" | "success";
  href?: string;
}

interface ToastValue {
  toasts: Toast[];
  push: (text: string, tone?: Toast["tone"], href?: string) => void;
  dismiss: (id: number) => void;
}

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
  const push = useCallback(
    (text: string, tone: Toast["tone"] = "info", href?: string) => {
      const id = next.current++;
      setToasts((all) => [...all.slice(-4), { id, text, tone, href }]);
      setTimeout(() => dismiss(id), timeout);
    },
    [dismiss, timeout],
  );
  const value = useMemo(() => ({ toasts, push, dismiss }), [toasts, push, dismiss]);
  return <ToastContext.Provider value={value}>{children}</ToastContext.Provider>;
}

export function useToasts(): ToastValue {
  const value = useContext(ToastContext);
  if (!value) throw new Error("useToasts outside ToastProvider");
  return value;
}
