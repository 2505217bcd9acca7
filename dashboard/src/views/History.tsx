import { useEffect, useState } from "preact/hooks";
import { api, errorText, localPath } from "../api";
import { EventCard, Notice, TypeUserFields } from "../components";
import type { Session } from "../main";
import type { CatalogType, EventPage } from "../types";

const PAGE_SIZE = 25;

function toRfc3339(local: string): string | null {
  if (!local) return null;
  const d = new Date(local);
  return isNaN(d.getTime()) ? null : d.toISOString();
}

export function History({ catalog, session }: { catalog: CatalogType[]; session: Session }) {
  const [type, setType] = useState("");
  const [user, setUser] = useState("");
  const [after, setAfter] = useState("");
  const [before, setBefore] = useState("");
  const [url, setUrl] = useState<string>(`/api/v1/twitch-events?page_size=${PAGE_SIZE}`);
  const [page, setPage] = useState<EventPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [pageNo, setPageNo] = useState(1);
  const [reload, setReload] = useState(0);

  const firstUrl = () => {
    const p = new URLSearchParams({ page_size: String(PAGE_SIZE) });
    if (type) p.set("event_type", type);
    if (user.trim()) p.set("user_name", user.trim());
    const a = toRfc3339(after);
    const b = toRfc3339(before);
    if (a) p.set("created_after", a);
    if (b) p.set("created_before", b);
    return `/api/v1/twitch-events?${p}`;
  };

  useEffect(() => {
    let live = true;
    setLoading(true);
    api<EventPage>(url).then(
      (p) => {
        if (!live) return;
        setPage(p);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (!live) return;
        setError(errorText(e));
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [url, reload]);

  const types = Array.from(new Set(catalog.map((c) => c.event_type))).sort();
  const go = (u: string | null, delta: number) => {
    if (!u) return;
    setUrl(localPath(u));
    setPageNo(pageNo + delta);
  };

  return (
    <section aria-labelledby="history-h">
      <div class="view-head">
        <h1 id="history-h">History</h1>
        <button type="button" onClick={() => setReload(reload + 1)}>
          Refresh
        </button>
      </div>
      <form
        class="filters"
        role="search"
        aria-label="Filter history"
        onSubmit={(ev) => {
          ev.preventDefault();
          setPageNo(1);
          const u = firstUrl();
          if (u === url) setReload(reload + 1);
          else setUrl(u);
        }}
      >
        <TypeUserFields idPrefix="history" types={types} type={type} setType={setType} user={user} setUser={setUser} />
        <label>
          From
          <input type="datetime-local" value={after} onInput={(ev) => setAfter((ev.target as HTMLInputElement).value)} />
        </label>
        <label>
          Until
          <input type="datetime-local" value={before} onInput={(ev) => setBefore((ev.target as HTMLInputElement).value)} />
        </label>
        <div class="row end">
          <button type="submit" class="primary">
            Apply filters
          </button>
          <button
            type="button"
            onClick={() => {
              setType("");
              setUser("");
              setAfter("");
              setBefore("");
              setPageNo(1);
              setUrl(`/api/v1/twitch-events?page_size=${PAGE_SIZE}`);
            }}
          >
            Reset
          </button>
        </div>
      </form>
      {error && <Notice kind="error">Could not load history: {error}</Notice>}
      {loading && !page && <p class="muted">Loading…</p>}
      {page && (
        <>
          <div class="event-list" aria-label="Stored events" role="region" aria-busy={loading}>
            {page.results.length === 0 ? (
              <p class="empty">No stored events match.</p>
            ) : (
              page.results.map((e) => (
                <EventCard
                  key={e.id ?? e.event_id}
                  event={e}
                  canReplay={session.can("bot")}
                  canDelete={session.can("admin")}
                  onDeleted={(id) => setPage({ ...page, results: page.results.filter((x) => x.id !== id) })}
                />
              ))
            )}
          </div>
          <nav class="pager" aria-label="History pages">
            <button type="button" disabled={!page.previous} onClick={() => go(page.previous, -1)}>
              ← Newer
            </button>
            <span>Page {pageNo}</span>
            <button type="button" disabled={!page.next} onClick={() => go(page.next, 1)}>
              Older →
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
