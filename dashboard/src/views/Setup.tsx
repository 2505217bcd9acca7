import { useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { api, errorText } from "../api";
import { CopyButton, Dot, Notice, type Level } from "../components";
import type { Session } from "../main";
import type { CatalogType, StatusDoc } from "../types";
import { scopeInfo } from "./Status";
import { EventTypes } from "./EventTypes";
import { AppCredentials } from "./AppCredentials";

function Step({ n, level, title, children }: { n: number; level: Level; title: string; children?: ComponentChildren }) {
  const word = level === "ok" ? "Done" : level === "off" ? "Optional" : level === "warn" ? "Check" : "To do";
  return (
    <li class={`step ${level}`}>
      <h2>
        <span class="step-n" aria-hidden="true">
          {n}
        </span>
        {title} <Dot level={level}>{word}</Dot>
      </h2>
      {children && <div class="step-body">{children}</div>}
    </li>
  );
}

export function ConnectButton({ label, session }: { label: string; session: Session }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!session.can("admin")) return <p class="muted">An admin token is needed to connect Twitch.</p>;
  return (
    <div class="row">
      <button
        type="button"
        class="primary"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            const r = await api<{ url: string }>("/api/v1/twitch/authorize", { method: "POST" });
            location.assign(r.url);
          } catch (e) {
            setError(errorText(e));
            setBusy(false);
          }
        }}
      >
        {busy ? "Opening Twitch…" : label}
      </button>
      {error && <Notice kind="error">Could not start the Twitch authorization: {error}</Notice>}
    </div>
  );
}

export function Setup({ status, session, catalog }: { status: StatusDoc | null; session: Session; catalog: CatalogType[] }) {
  if (!status)
    return (
      <section aria-labelledby="setup-h">
        <h1 id="setup-h">Setup</h1>
        <p class="muted">Waiting for the relay's status…</p>
      </section>
    );
  const tw = status.twitch;
  const redirect = tw.redirect_uri ?? `${location.origin}/twitch-callback/`;
  const { granted, needed, missing } = scopeInfo(status);
  const creds: Level = !tw.client_id_configured ? "bad" : tw.app_token.state === "rejected" ? "bad" : tw.app_token.state === "valid" ? "ok" : "warn";
  const authorized = tw.user_token.state === "valid";
  const auth: Level = authorized ? (missing.length ? "warn" : "ok") : "bad";
  const es = tw.eventsub;
  const types = tw.event_types ?? null;
  // On the websocket the connecting account is the broadcaster (TWITCH_BROADCASTER only restricts it).
  const broadcasterOptional = es.transport === "websocket";
  const allDone = creds === "ok" && auth === "ok" && (!!tw.broadcaster || broadcasterOptional) && es.state === "connected";

  return (
    <section aria-labelledby="setup-h">
      <h1 id="setup-h">Setup</h1>
      {allDone ? (
        <Notice kind="ok">TAU is set up: Twitch is connected and events flow.</Notice>
      ) : (
        <p>What is left to do, in order. This page updates by itself.</p>
      )}
      <ol class="steps">
        <Step n={1} level={creds} title="Twitch app credentials">
          <AppCredentials status={status} session={session} redirect={redirect} />
        </Step>
        <Step n={2} level={tw.client_id_configured ? "ok" : "warn"} title="Redirect URL registered at Twitch">
          <p>Add this exact URL as an OAuth Redirect URL of your Twitch app:</p>
          <div class="copy-line">
            <code>{redirect}</code>
            <CopyButton text={redirect} name="Copy redirect URL" />
          </div>
          {!tw.redirect_uri && <p class="muted small-text">(Assumed from this page's address; set TAU_PUBLIC_URL if the relay is reached under another one.)</p>}
        </Step>
        <Step n={3} level={tw.broadcaster ? "ok" : broadcasterOptional ? "off" : "bad"} title="Broadcaster">
          {tw.broadcaster ? (
            <p>
              This relay serves the channel <b>{tw.broadcaster}</b>.
            </p>
          ) : broadcasterOptional ? (
            <p>
              Optional on the EventSub WebSocket transport: the Twitch account that connects in step 4 becomes the broadcaster
              {authorized && tw.user_token.login ? (
                <>
                  {" "}
                  (now <b>{tw.user_token.login}</b>)
                </>
              ) : null}
              . Set <code>TWITCH_BROADCASTER</code> to a login name only to refuse every other account.
            </p>
          ) : (
            <p>
              Set <code>TWITCH_BROADCASTER</code> to the channel's login name and restart the relay: the {es.transport} transport needs it.
            </p>
          )}
        </Step>
        <Step n={4} level={auth} title="Connect Twitch">
          {authorized ? (
            <p>
              Authorized by <b>{tw.user_token.login ?? "the broadcaster"}</b> with {granted.length} scope(s).
            </p>
          ) : tw.user_token.state === "authorization_needed" ? (
            <p>Twitch no longer accepts the broadcaster's authorization: connect again.</p>
          ) : (
            <p>The broadcaster must log in at Twitch once and allow TAU to read the channel's events.</p>
          )}
          {missing.length > 0 && (
            <Notice kind="error">
              Twitch granted fewer scopes than needed. Missing: {missing.join(", ")}. Connect again and allow all of them.
            </Notice>
          )}
          {needed && needed.length > 0 && (
            <p class="muted small-text">Scopes needed for the chosen event types: {needed.join(", ")}</p>
          )}
          {tw.client_id_configured && (!authorized || missing.length > 0) && (
            <ConnectButton label={authorized ? "Connect again" : "Connect Twitch"} session={session} />
          )}
          {authorized && missing.length === 0 && (
            <details>
              <summary>Authorize again (e.g. as another account)</summary>
              <ConnectButton label="Connect again" session={session} />
            </details>
          )}
        </Step>
        <Step
          n={5}
          level={es.state === "connected" ? "ok" : es.state === "disabled" ? "off" : es.state === "backoff" ? "bad" : "warn"}
          title="Events flowing"
        >
          <p>
            EventSub ({es.transport}): {es.state.replace(/_/g, " ")}
            {es.subscriptions.length ? `, ${es.subscriptions.filter((s) => s.status === "enabled").length} of ${es.subscriptions.length} subscriptions enabled` : ""}.
          </p>
          {es.last_error && <p class="err-text">{es.last_error}</p>}
          {types && (
            <details>
              <summary>Event types this relay subscribes to ({types.length})</summary>
              <ul class="scopes">
                {types.map((t) => {
                  const c = catalog.find((x) => x.event_type === t || x.name === t);
                  return (
                    <li key={t}>
                      <code>{t}</code>
                      {c && c.scopes.length ? ` needs ${c.scopes.join(", ")}` : ""}
                    </li>
                  );
                })}
              </ul>
            </details>
          )}
          <p>
            <a href="#/subscriptions">See every subscription</a>
          </p>
        </Step>
        <Step n={6} level="off" title="Connect your bots and overlays">
          <p>
            Give each bot or overlay its own token: <a href="#/tokens">create one in Tokens</a>. Then try it with{" "}
            <a href="#/test">a test event</a>.
          </p>
        </Step>
      </ol>
      <EventTypes session={session} catalog={catalog} />
    </section>
  );
}
