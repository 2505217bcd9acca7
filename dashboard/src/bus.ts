// The app's one live event socket, shared: views that react to events
// (Streamers flips a streamer's live state, Chat announces new lines)
// listen here instead of opening a second socket to the relay.
import { useEffect, useRef } from "preact/hooks";
import type { TauEvent } from "./types";

type Listener = (e: TauEvent) => void;
const listeners = new Set<Listener>();

/** Called by the app for every event frame of `/ws/twitch-events/`. */
export function publishLiveEvent(e: TauEvent): void {
  for (const fn of listeners) fn(e);
}

/** Calls `fn` for every live event while the calling component is mounted. */
export function useLiveEvents(fn: Listener): void {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    const listener: Listener = (e) => latest.current(e);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
}
