/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The backend serves the built app (config/webapp.py). `npm run dev` proxies the API and the
// WebSocket to a backend started with `make run` (DESKSTREAM_API overrides where it is).
const backend = process.env.DESKSTREAM_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 400 },
  server: {
    host: "127.0.0.1",
    proxy: {
      "/api": backend,
      "/ws": { target: backend.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
  },
});
