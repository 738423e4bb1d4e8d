import { defineConfig } from "vite";

// The console is built into dist/, which lnmuxd embeds (go:embed) and
// serves under /console/. Relative asset paths let the same build be served
// from any path and any origin (the cross-origin browser test does).
export default defineConfig({
  root: "console",
  base: "./",
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    // No inlined sourcemaps or hashed-name churn beyond content hashes: the
    // committed build must be reproducible (check-build.sh).
    sourcemap: false,
    reportCompressedSize: false,
  },
});
