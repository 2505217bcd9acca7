import { useState } from "preact/hooks";

export function Login({ error, onLogin }: { error: string | null; onLogin: (token: string) => void }) {
  const [value, setValue] = useState("");
  const [local, setLocal] = useState<string | null>(null);
  const shown = local ?? error;
  return (
    <main id="main" class="login">
      <div class="card login-card">
        <h1>
          <span class="logo" aria-hidden="true">
            τ
          </span>{" "}
          TAU dashboard
        </h1>
        <p>Paste a TAU token to open the dashboard. The relay prints a login link with an admin token when it starts.</p>
        <form
          onSubmit={(ev) => {
            ev.preventDefault();
            const t = value.trim();
            if (!t) {
              setLocal("Enter a token: the field is empty.");
              return;
            }
            setLocal(null);
            onLogin(t);
          }}
          noValidate
        >
          <label for="token">Token</label>
          <input
            id="token"
            type="password"
            autoComplete="off"
            value={value}
            aria-invalid={shown ? true : undefined}
            aria-describedby={shown ? "login-error" : undefined}
            onInput={(ev) => setValue((ev.target as HTMLInputElement).value)}
          />
          {shown && (
            <p id="login-error" class="notice error" role="alert">
              {shown}
            </p>
          )}
          <button type="submit" class="primary">
            Log in
          </button>
        </form>
        <p class="muted small-text">
          The token stays in this browser (localStorage) and is sent only to this relay. Lost it? Run <code>tau-relay token create --name NAME --role admin</code>{" "}
          on the server.
        </p>
      </div>
    </main>
  );
}
