// Renders chat templates with @huggingface/jinja, the Jinja implementation Hugging Face uses in JavaScript:
// the reference ChatTemplateAgreementTests compare LlavaNative's renderer against, byte for byte.
//
// usage: node render-huggingface-jinja.mjs REFERENCE_DIR < cases.json
//   cases.json: [{"template": "...", "context": {"messages": [...], "add_generation_prompt": true, ...}}, ...]
// prints:       {"version": "0.5.x", "results": [{"text": "..."} | {"error": "..."}, ...]}
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const referenceDir = process.argv[2];
const packageDir = join(referenceDir, "node_modules", "@huggingface", "jinja");
const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
const { Template } = await import(pathToFileURL(join(packageDir, "dist", "index.js")).href);

const cases = JSON.parse(readFileSync(0, "utf8"));
const results = cases.map(({ template, context }) => {
  try {
    return { text: new Template(template).render(context) };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
});
process.stdout.write(JSON.stringify({ version, results }));
