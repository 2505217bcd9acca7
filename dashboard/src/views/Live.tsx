import { useState } from "preact/hooks";
import { EventCard, TypeUserFields } from "../components";
import { usersOf } from "../render";
import type { Session } from "../main";
import type { CatalogType, TauEvent } from "../types";

const keys = new WeakMap<TauEvent, number>();
let nextKey = 0;
function keyOf(e: TauEvent): number {
  let k = keys.get(e);
  if (k === undefined) {
    k = nextKey++;
    keys.set(e, k);
  }
  return k;
}

export interface Feed {
  events: TauEvent[];
  buffer: TauEvent[];
  counts: Record<string, number>;
  paused: boolean;
  lastId: string | null;
  received: number;
}

export function Live({
  feed,
  session,
  setPaused,
  clear,
  catalog,
}: {
  feed: Feed;
  session: Session;
  setPaused: (p: boolean) => void;
  clear: () => void;
  catalog: CatalogType[];
}) {
  const [type, setType] = useState("");
  const [wide] = useState(() => window.innerWidth > 760);
  const [user, setUser] = useState("");
  const [search, setSearch] = useState("");
  const u = user.trim().toLowerCase();
  const q = search.trim().toLowerCase();
  const shown = feed.events.filter(
    (e) =>
      (!type || e.event_type === type) &&
      (!u || usersOf(e).includes(u)) &&
      (!q || JSON.stringify(e).toLowerCase().includes(q)),
  );
  const types = Object.keys(feed.counts).sort();
  const allTypes = Array.from(new Set([...types, ...catalog.map((c) => c.event_type)])).sort();

  return (
    <section aria-labelledby="live-h">
      <div class="view-head">
        <h1 id="live-h">Live</h1>
        <div class="row">
          <button type="button" aria-pressed={feed.paused} onClick={() => setPaused(!feed.paused)}>
            {feed.paused ? `Resume (${feed.buffer.length} waiting)` : "Pause"}
          </button>
          <button type="button" onClick={clear}>
            Clear
          </button>
        </div>
      </div>
      <form class="filters" role="search" aria-label="Filter live events" onSubmit={(ev) => ev.preventDefault()}>
        <TypeUserFields idPrefix="live" types={allTypes} counts={feed.counts} type={type} setType={setType} user={user} setUser={setUser} />
        <label class="span-phone">
          Search
          <input type="search" value={search} placeholder="any text" onInput={(ev) => setSearch((ev.target as HTMLInputElement).value)} />
        </label>
      </form>
      {types.length > 0 && (
        <details class="counts" open={wide}>
          <summary>
            Counts per type: {feed.received} event(s) in {types.length} type(s)
          </summary>
        <ul class="chips" aria-label="Events per type">
          {types.map((t) => (
            <li key={t}>
              <button type="button" class="chip" aria-pressed={type === t} onClick={() => setType(type === t ? "" : t)}>
                {t} <b>{feed.counts[t]}</b>
              </button>
            </li>
          ))}
        </ul>
        </details>
      )}
      <p class="muted small-text">
        {feed.paused ? `Paused: ${feed.buffer.length} new event(s) waiting. ` : ""}
        Showing {shown.length} of {feed.events.length} (the newest 500 are kept; older ones are in History).
      </p>
      <div role="log" aria-label="Live events" aria-live="off" class="event-list">
        {shown.length === 0 ? (
          <p class="empty">
            {feed.events.length === 0
              ? "Waiting for events. Send one from Test events, or replay one from History."
              : "No event matches these filters."}
          </p>
        ) : (
          shown.map((e) => <EventCard key={keyOf(e)} event={e} canReplay={session.can("bot")} />)
        )}
      </div>
    </section>
  );
}
