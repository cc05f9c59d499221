/**
 * The device's stage socket (issue 16 "Push, not polling"): a WebSocket to its SecAgg shard over
 * which the shard pushes this device's view at every stage change, so `sync()` does not poll
 * `GET …/view`. It is only ever an accelerator: a socket that cannot open, closes or stays
 * silent leaves the caller on HTTP polling, which loses nothing because every pushed view is one
 * the HTTP route would have answered. Part of the lazily loaded sync chunk.
 */

import { type SecAggServerView, StagePush } from "@fedprofile/protocol/wire";

/** The part of a WebSocket this uses (the browser's, Node's, or a test's). */
export interface StageSocketLike {
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close" | "error", listener: () => void): void;
  close(code?: number, reason?: string): void;
}

/** Opens a socket to `url` offering `protocols` (default: `new WebSocket(url, protocols)`). */
export type StageSocketFactory = (url: string, protocols: string[]) => StageSocketLike;

/** A stage socket as the round loop uses it. */
export interface StageSocket {
  /** Whether a view may still arrive (false once the socket failed or closed). */
  readonly alive: boolean;
  /** Whether any view has arrived yet. */
  readonly received: boolean;
  /** The newest pushed view not yet taken, or null. */
  take(): SecAggServerView | null;
  /** Resolves on the next pushed view, when the socket ends, or after `ms`, whichever is first. */
  wait(ms: number): Promise<void>;
  close(): void;
}

/** The global WebSocket as a factory, or null where there is none. */
export function defaultSocketFactory(): StageSocketFactory | null {
  const Socket = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => StageSocketLike })
    .WebSocket;
  return Socket ? (url, protocols) => new Socket(url, protocols) : null;
}

/**
 * Opens the socket. Never throws: a factory that throws (no network, a refused scheme) gives a
 * socket that is simply not alive. A message that is not a valid {@link StagePush} ends it too.
 */
export function openStageSocket(url: string, protocols: string[], factory: StageSocketFactory): StageSocket {
  let alive = true;
  let received = false;
  let latest: SecAggServerView | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const end = () => {
    alive = false;
    notify();
  };
  let socket: StageSocketLike | null = null;
  try {
    socket = factory(url, protocols);
    socket.addEventListener("message", (event) => {
      let parsed: ReturnType<typeof StagePush.safeParse> | null = null;
      try {
        parsed = typeof event.data === "string" ? StagePush.safeParse(JSON.parse(event.data)) : null;
      } catch {
        parsed = null;
      }
      if (!parsed?.success) {
        socket?.close(1003, "not a stage push");
        return end();
      }
      received = true;
      latest = parsed.data.view;
      notify();
    });
    socket.addEventListener("close", end);
    socket.addEventListener("error", end);
  } catch {
    end();
  }
  return {
    get alive() {
      return alive;
    },
    get received() {
      return received;
    },
    take() {
      const view = latest;
      latest = null;
      return view;
    },
    wait(ms) {
      if (!alive || latest) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wake = null;
          resolve();
        }, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
    close() {
      alive = false;
      try {
        socket?.close(1000, "done");
      } catch {
        // Already closed.
      }
    },
  };
}
