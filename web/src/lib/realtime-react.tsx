// React glue for the one RealtimeClient: a provider that connects while signed in, and hooks.

import {
  createContext,
  useContext,
  useEffect,
  useLayoutEffect,
  useRef,
  useState,
  type ReactNode,
} from "react";
import {
  RealtimeClient,
  defaultSocketUrl,
  type ConnectionState,
  type StreamHandlers,
  type StreamName,
} from "./realtime";

const RealtimeContext = createContext<RealtimeClient | null>(null);

export function RealtimeProvider({
  children,
  signedIn,
  client,
}: {
  children: ReactNode;
  signedIn: boolean;
  client?: RealtimeClient;
}) {
  const [realtime] = useState(() => client ?? new RealtimeClient(defaultSocketUrl()));
  useEffect(() => {
    if (!signedIn) return;
    realtime.start();
    return () => realtime.stop();
  }, [realtime, signedIn]);
  return <RealtimeContext.Provider value={realtime}>{children}</RealtimeContext.Provider>;
}

export function useRealtime(): RealtimeClient | null {
  return useContext(RealtimeContext);
}

export function useConnectionState(): ConnectionState {
  const realtime = useRealtime();
  const [state, setState] = useState<ConnectionState>(realtime?.state ?? "closed");
  useEffect(() => realtime?.onState(setState), [realtime]);
  return state;
}

/** Subscribe while mounted (and `enabled`); handlers may change on every render. */
export function useStream(
  stream: StreamName,
  handlers: StreamHandlers,
  options: {
    ticketId?: string;
    afterPosition?: number | null;
    afterVersion?: number | null;
    enabled?: boolean;
  } = {},
): void {
  const realtime = useRealtime();
  // The newest handlers, kept without resubscribing (updated after render, before effects).
  const latest = useRef(handlers);
  useLayoutEffect(() => {
    latest.current = handlers;
  });
  const enabled = options.enabled ?? true;
  useEffect(() => {
    if (!realtime || !enabled) return;
    return realtime.subscribe(
      stream,
      {
        onEvent: (f) => latest.current.onEvent?.(f),
        onTyping: (f) => latest.current.onTyping?.(f),
        onViewing: (f) => latest.current.onViewing?.(f),
        onPresence: (a, s) => latest.current.onPresence?.(a, s),
        onResync: () => latest.current.onResync?.(),
        onDraft: (f) => latest.current.onDraft?.(f),
      },
      {
        ticketId: options.ticketId,
        afterPosition: options.afterPosition,
        afterVersion: options.afterVersion,
      },
    );
    // The resume point only matters for the first subscribe; later ones come from the client.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [realtime, stream, options.ticketId, enabled]);
}
