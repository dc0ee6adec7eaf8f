// Copies the built browser files of the pinned packages into ../static/vendor (committed),
// with each package's licence, so the dashboard serves every asset itself.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "vendor");
const files = {
  "htmx.org": ["dist/htmx.min.js"],
  "@highlightjs/cdn-assets": ["highlight.min.js", "styles/github.min.css"],
  "uplot": ["dist/uPlot.iife.min.js", "dist/uPlot.min.css"],
  "d3": ["dist/d3.min.js"],
};

mkdirSync(out, { recursive: true });
const versions = {};
for (const [pkg, paths] of Object.entries(files)) {
  const root = join(here, "node_modules", pkg);
  versions[pkg] = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
  for (const path of paths) {
    copyFileSync(join(root, path), join(out, path.split("/").pop()));
  }
  const slug = pkg.replace(/[@/]/g, "_").replace(/^_/, "");
  copyFileSync(join(root, "LICENSE"), join(out, `LICENSE.${slug}.txt`));
}
writeFileSync(join(out, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendored into ${out}:`, versions);
