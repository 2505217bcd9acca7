// TAU dashboard build: stable file names (index.html, app.js, app.css) in
// relay/src/dashboard/dist, which the relay embeds with include_str!.
import { defineConfig } from "vite";

declare const process: { env: Record<string, string | undefined> };
const relay = process.env.TAU_RELAY ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: {
    alias: { react: "preact/compat", "react-dom": "preact/compat" },
  },
  build: {
    outDir: "../relay/src/dashboard/dist",
    emptyOutDir: true,
    assetsDir: "",
    modulePreload: false,
    cssCodeSplit: false,
    sourcemap: false,
    target: "es2020",
    rollupOptions: {
      output: {
        entryFileNames: "app.js",
        chunkFileNames: "app-[name].js",
        assetFileNames: (info) =>
          (info.names ?? []).some((n) => n.endsWith(".css")) ? "app.css" : "[name][extname]",
        codeSplitting: false,
      },
    },
  },
  server: {
    proxy: {
      "/api": relay,
      "/ws": { target: relay.replace(/^http/, "ws"), ws: true },
      "^/twitch.*": relay,
      "/healthz": relay,
    },
  },
});
