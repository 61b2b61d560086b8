/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

// Pre-compressed copies of every built text asset (name.js.gz, name.js.br): WhiteNoise serves
// the smallest one the browser accepts, with `Vary: Accept-Encoding`, and never compresses
// on the fly. Node's own zlib does both encodings, so no plugin package is needed.
function precompress(): Plugin {
  let outDir = "dist";
  return {
    name: "deskstream-precompress",
    apply: "build",
    configResolved(config) {
      outDir = config.build.outDir;
    },
    closeBundle() {
      const assets = join(outDir, "assets");
      for (const name of readdirSync(assets)) {
        if (!/\.(js|css|svg|json|html)$/.test(name)) continue;
        const file = join(assets, name);
        const data = readFileSync(file);
        if (data.length < 1024) continue;
        writeFileSync(`${file}.gz`, gzipSync(data, { level: 9 }));
        writeFileSync(
          `${file}.br`,
          brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        );
      }
    },
  };
}

// The backend serves the built app (config/webapp.py). `npm run dev` proxies the API and the
// WebSocket to a backend started with `make run` (DESKSTREAM_API overrides where it is).
const backend = process.env.DESKSTREAM_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react(), precompress()],
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
