// A watched streamer's recent streams (`/api/v1/streamers/{id}/streams`),
// newest first, ten at a time, "More streams" following the relay's `next`.
import { useEffect, useState } from "preact/hooks";
import { api, errorText, localPath } from "../api";
import { Notice } from "../components";
import { when } from "../render";
import type { Page, Stream } from "../types";

const PAGE = 10;

export function duration(startIso: string, endIso: string | null): string {
  const start = new Date(startIso).getTime();
  const end = endIso ? new Date(endIso).getTime() : Date.now();
  if (isNaN(start) || isNaN(end)) return "";
  const min = Math.max(0, Math.round((end - start) / 60000));
  const h = Math.floor(min / 60);
  const text = h ? `${h} h ${String(min % 60).padStart(2, "0")} min` : `${min} min`;
  return endIso ? text : `${text} so far`;
}

export function StreamList({ streamerId, name, reload }: { streamerId: string; name: string; reload: number }) {
  const [streams, setStreams] = useState<Stream[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const fetchPage = async (url: string, append: boolean) => {
    setBusy(true);
    try {
      const page = await api<Page<Stream>>(url);
      setStreams((old) => (append ? [...(old ?? []), ...page.results] : page.results));
      setNext(page.next);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    void fetchPage(`/api/v1/streamers/${encodeURIComponent(streamerId)}/streams?limit=${PAGE}`, false);
  }, [streamerId, reload]);

  if (error) return <Notice kind="error">Could not load the streams of {name}: {error}</Notice>;
  if (!streams) return <p class="muted">Loading…</p>;
  if (!streams.length) return <p class="muted small-text">No stream recorded yet: streams are recorded from when the relay watches {name}.</p>;
  return (
    <>
      <div class="table-wrap">
        <table class="stack">
          <caption class="offscreen">Streams of {name}, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">Game</th>
              <th scope="col">Started</th>
              <th scope="col">Ended</th>
              <th scope="col">Duration</th>
              <th scope="col">Viewers</th>
            </tr>
          </thead>
          <tbody>
            {streams.map((s) => (
              <tr key={s.id}>
                <th scope="row">{s.title || "(no title)"}</th>
                <td data-label="Game">
                  <span>{s.game_name || "—"}</span>
                </td>
                <td data-label="Started">
                  <time dateTime={s.started_at}>{when(s.started_at)}</time>
                </td>
                <td data-label="Ended">
                  <span>{s.ended_at ? when(s.ended_at) : "live now"}</span>
                </td>
                <td data-label="Duration">
                  <span>{duration(s.started_at, s.ended_at)}</span>
                </td>
                <td data-label="Viewers">
                  <span>{typeof s.viewer_count === "number" ? s.viewer_count.toLocaleString() : "—"}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {next && (
        <button type="button" class="small" disabled={busy} onClick={() => void fetchPage(localPath(next), true)}>
          {busy ? "Loading…" : "More streams"}
        </button>
      )}
    </>
  );
}
