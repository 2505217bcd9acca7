// Setup step 1: the Twitch application's client id and secret, entered
// here (`PUT /api/v1/twitch/app`, checked with Twitch before it is stored)
// or set in the relay's environment, which wins. The secret is never shown
// again: the relay does not return it.
import { useEffect, useState } from "preact/hooks";
import { api, errorText } from "../api";
import { Notice } from "../components";
import type { Session } from "../main";
import type { StatusDoc } from "../types";

type AppDoc = { client_id: string | null; source: "environment" | "dashboard" | null };

/** What Twitch said about the configured pair, in words. */
function verdict(tw: StatusDoc["twitch"]) {
  if (tw.app_token.state === "rejected")
    return <p class="err-text">Twitch refused the client ID and secret{tw.app_token.error ? `: ${tw.app_token.error}` : ""}.</p>;
  if (tw.app_token.state === "valid") return <p>Twitch accepts the app's credentials.</p>;
  return <p>Configured; Twitch has not been asked yet.</p>;
}

function EnvAlternative({ open }: { open?: boolean }) {
  return (
    <details class="more" open={open}>
      <summary>Or set them as environment variables</summary>
      <p>Set these for the relay and restart it (they win over what is entered here):</p>
      <ul>
        <li>
          <code>TWITCH_CLIENT_ID</code>: the app's Client ID
        </li>
        <li>
          <code>TWITCH_CLIENT_SECRET</code>: a new secret of the app
        </li>
      </ul>
    </details>
  );
}

function CredentialsForm({ onSaved, onCancel }: { onSaved: (doc: AppDoc) => void; onCancel?: () => void }) {
  const [clientId, setClientId] = useState("");
  const [secret, setSecret] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="card app-form"
      aria-labelledby="app-form-h"
      noValidate
      onSubmit={async (ev) => {
        ev.preventDefault();
        const id = clientId.trim();
        const sec = secret.trim();
        if (!id || !sec) {
          setError(!id ? "Enter the app's Client ID." : "Enter the app's Client secret.");
          return;
        }
        setBusy(true);
        setError(null);
        try {
          const doc = await api<AppDoc>("/api/v1/twitch/app", { method: "PUT", body: { client_id: id, client_secret: sec } });
          setSecret("");
          onSaved(doc);
        } catch (e) {
          setError(errorText(e));
        } finally {
          setBusy(false);
        }
      }}
    >
      <h3 id="app-form-h">Twitch application</h3>
      <div class="fields">
        <div class="field">
          <label for="app-client-id">Client ID</label>
          <input
            id="app-client-id"
            value={clientId}
            maxLength={100}
            autoComplete="off"
            spellcheck={false}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "app-err" : undefined}
            onInput={(ev) => setClientId((ev.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="app-client-secret">Client secret</label>
          <input
            id="app-client-secret"
            type="password"
            value={secret}
            maxLength={100}
            autoComplete="off"
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "app-err" : undefined}
            onInput={(ev) => setSecret((ev.target as HTMLInputElement).value)}
          />
        </div>
      </div>
      {error && (
        <p id="app-err" class="notice error" role="alert">
          Not saved: {error}
        </p>
      )}
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Checking with Twitch…" : "Save"}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
        )}
      </div>
      <p class="muted small-text">TAU asks Twitch whether it accepts the pair before storing it. The secret is stored encrypted and never shown again.</p>
    </form>
  );
}

export function AppCredentials({ status, session, redirect }: { status: StatusDoc; session: Session; redirect: string }) {
  const tw = status.twitch;
  const admin = session.can("admin");
  const reported = tw.credentials_source ?? (tw.client_id_configured ? "environment" : null);
  // What this page just did, until the pushed status (every 2 s) says so too.
  const [local, setLocal] = useState<{ source: AppDoc["source"] } | null>(null);
  const source = local ? local.source : reported;
  const [doc, setDoc] = useState<AppDoc | null>(null);
  const [replacing, setReplacing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);

  useEffect(() => {
    if (local && local.source === reported) setLocal(null);
  }, [local, reported]);
  // The client id (admins only); read again when the source changes.
  useEffect(() => {
    if (!admin || !source) return;
    api<AppDoc>("/api/v1/twitch/app").then(setDoc, () => undefined);
  }, [admin, source]);

  const help = (
    <p>
      Create an application at <a href="https://dev.twitch.tv/console/apps" target="_blank" rel="noreferrer">dev.twitch.tv/console/apps</a> (category
      “Application Integration”), register <code>{redirect}</code> as its OAuth Redirect URL (step 2), then copy its Client ID and
      a new Client secret here.
    </p>
  );

  if (source === "environment")
    return (
      <>
        <p>
          Set by the relay's environment (<code>TWITCH_CLIENT_ID</code>
          {doc?.client_id ? (
            <>
              : <code>{doc.client_id}</code>
            </>
          ) : null}
          ). The environment wins over this page: change the variables and restart the relay to use another app.
        </p>
        {verdict(tw)}
      </>
    );

  if (source === "dashboard" && !replacing)
    return (
      <>
        <p>
          Entered on this page{doc?.client_id ? (
            <>
              : Client ID <code>{doc.client_id}</code>
            </>
          ) : null}
          .
        </p>
        {saved && <Notice kind="ok">Saved: Twitch accepted the client ID and secret.</Notice>}
        {verdict(tw)}
        {admin && (
          <div class="row">
            {confirming ? (
              <>
                <button
                  type="button"
                  class="danger"
                  onClick={async () => {
                    setError(null);
                    try {
                      await api("/api/v1/twitch/app", { method: "DELETE" });
                      setDoc(null);
                      setSaved(false);
                      setLocal({ source: null });
                    } catch (e) {
                      setError(errorText(e));
                    }
                    setConfirming(false);
                  }}
                >
                  Forget the client ID and secret
                </button>
                <button type="button" onClick={() => setConfirming(false)}>
                  Cancel
                </button>
              </>
            ) : (
              <>
                <button type="button" onClick={() => (setReplacing(true), setSaved(false), setError(null))}>
                  Replace
                </button>
                <button type="button" class="danger" onClick={() => setConfirming(true)}>
                  Forget
                </button>
              </>
            )}
          </div>
        )}
        {confirming && <p class="muted small-text">TAU stops talking to Twitch until a new pair is entered.</p>}
        {error && <Notice kind="error">Could not forget them: {error}</Notice>}
      </>
    );

  return (
    <>
      {source === "dashboard" ? <p>Enter the new pair; the current one stays until Twitch accepts the new one.</p> : <p>The relay has no Twitch application yet.</p>}
      {help}
      {admin ? (
        <CredentialsForm
          onSaved={(d) => {
            setDoc(d);
            setReplacing(false);
            setSaved(true);
            setLocal({ source: d.source });
          }}
          onCancel={replacing ? () => setReplacing(false) : undefined}
        />
      ) : (
        <p class="muted">An admin token is needed to enter the app's credentials.</p>
      )}
      <EnvAlternative />
    </>
  );
}
