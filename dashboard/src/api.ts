// The relay's REST API, the token, and self-healing websockets.

const TOKEN_KEY = "tau-token";

export function getToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(token: string | null): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives only in this page */
  }
}

/** An answer the relay refused, with its `{"detail"}` in words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** `path` relative to this origin (the relay's `next` links are absolute). */
export function localPath(url: string): string {
  try {
    const u = new URL(url, location.origin);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

export async function api<T = unknown>(
  path: string,
  options: { method?: string; body?: unknown; raw?: string } = {},
): Promise<T> {
  const headers: Record<string, string> = { Authorization: "Token " + getToken() };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  } else if (options.raw !== undefined) {
    headers["Content-Type"] = "application/json";
    body = options.raw;
  }
  let response: Response;
  try {
    response = await fetch(path, { method: options.method ?? "GET", headers, body });
  } catch {
    throw new ApiError(0, "the relay did not answer (is it running?)");
  }
  const text = response.status === 204 ? "" : await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const detail =
      data && typeof data === "object" && "detail" in data
        ? String((data as { detail: unknown }).detail)
        : data && typeof data === "object" && "error" in data
          ? String((data as { error: unknown }).error)
          : typeof data === "string" && data
            ? data
            : response.statusText || "request failed";
    throw new ApiError(response.status, `${detail} (HTTP ${response.status})`);
  }
  return data as T;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function wsUrl(path: string): string {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

export type SocketState =
  | { kind: "connecting"; attempt: number }
  | { kind: "open" }
  | { kind: "waiting"; attempt: number; retryAt: number; reason: string }
  | { kind: "refused"; reason: string }
  | { kind: "stopped" };

/**
 * A websocket that sends the token handshake, reconnects with backoff
 * (1 s doubling to 15 s) after any drop, and stops only when the relay
 * refuses the token (close 1008 or an `{"error"}` frame).
 */
export class LiveSocket {
  private ws: WebSocket | null = null;
  private timer: number | undefined;
  private attempt = 0;
  private stopped = false;
  private refused: string | null = null;

  constructor(
    private path: string,
    private hello: () => Record<string, unknown>,
    private onMessage: (data: unknown) => void,
    private onState: (s: SocketState) => void,
  ) {}

  start(): void {
    this.stopped = false;
    this.refused = null;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
    this.onState({ kind: "stopped" });
  }

  private open(): void {
    window.clearTimeout(this.timer);
    this.onState({ kind: "connecting", attempt: this.attempt });
    let ws: WebSocket;
    try {
      ws = new WebSocket(wsUrl(this.path));
    } catch (e) {
      this.retry(errorText(e));
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ token: getToken(), ...this.hello() }));
      this.onState({ kind: "open" });
    };
    ws.onmessage = (m) => {
      let data: unknown;
      try {
        data = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (data && typeof data === "object" && "error" in data && !("event_type" in data)) {
        this.refused = String((data as { error: unknown }).error);
        return;
      }
      this.attempt = 0;
      this.onMessage(data);
    };
    ws.onclose = (c) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      if (c.code === 1008 || this.refused) {
        const reason = this.refused ?? (c.reason || "the relay refused the token");
        this.onState({ kind: "refused", reason });
        return;
      }
      if (opened) this.attempt = Math.min(this.attempt, 1);
      this.retry(c.reason || (opened ? "connection lost" : "relay unreachable"));
    };
  }

  private retry(reason: string): void {
    this.attempt += 1;
    const delay = Math.min(15000, 1000 * 2 ** Math.min(this.attempt - 1, 4));
    this.onState({ kind: "waiting", attempt: this.attempt, retryAt: Date.now() + delay, reason });
    this.timer = window.setTimeout(() => this.open(), delay);
  }
}
