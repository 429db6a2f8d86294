// Reference tokenization of tokenizer.json files by Hugging Face's own implementations, for the C# tests.
//
//   node hf-tokenizers-reference.cjs REQUEST.json > RESPONSE.json
//
// REQUEST:  { "modules": ".../node_modules", "jobs": [JOB, ...] }
//   JOB:    { "engine": "rust" | "js", "tokenizer": ".../tokenizer.json", "config": ".../tokenizer_config.json",
//             "texts": [...], "decode": [[ids...], ...], "decodeOwn": bool, "tokens": bool }
// RESPONSE: { "jobs": [{ "encodings": [{ "withSpecial": [...], "plain": [...],
//                                        "withSpecialTokens": [...], "plainTokens": [...] }, ...],
//                        "decoded": [{ "keep": "...", "skip": "..." }, ...],
//                        "decodedOwn": [...] }, ...] }
//
// Each text is encoded with and without special tokens; with "tokens" the ids also come back as token strings
// (id_to_token). "decode" lists are decoded with skip_special_tokens false and true; with "decodeOwn" so are the
// ids of each text encoded with special tokens.
//
// "rust" is the npm package `tokenizers` (the Rust library Python's `tokenizers` runs, native binary inside);
// "js" is `@huggingface/tokenizers`, the pure JavaScript implementation used by transformers.js (decoded with
// clean_up_tokenization_spaces false, as the Rust decode does). Both come from tools/install-reference.sh.
'use strict';
const fs = require('fs');
const path = require('path');

async function rustJob(modules, job) {
  const { Tokenizer } = require(path.join(modules, 'tokenizers'));
  const tokenizer = Tokenizer.fromFile(job.tokenizer);
  const result = { encodings: [], decoded: [], decodedOwn: [] };
  const decode = async (ids) => ({ keep: await tokenizer.decode(ids, false), skip: await tokenizer.decode(ids, true) });
  for (const text of job.texts) {
    const withSpecial = (await tokenizer.encode(text, null, { addSpecialTokens: true })).getIds();
    const plain = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
    const encoding = { withSpecial, plain };
    if (job.tokens) {
      encoding.withSpecialTokens = withSpecial.map((id) => tokenizer.idToToken(id));
      encoding.plainTokens = plain.map((id) => tokenizer.idToToken(id));
    }
    result.encodings.push(encoding);
    if (job.decodeOwn) result.decodedOwn.push(await decode(withSpecial));
  }
  for (const ids of job.decode || []) result.decoded.push(await decode(ids));
  return result;
}

function jsJob(modules, job) {
  const { Tokenizer } = require(path.join(modules, '@huggingface', 'tokenizers'));
  const json = JSON.parse(fs.readFileSync(job.tokenizer, 'utf8'));
  const config = job.config && fs.existsSync(job.config) ? JSON.parse(fs.readFileSync(job.config, 'utf8')) : {};
  const tokenizer = new Tokenizer(json, config);
  const result = { encodings: [], decoded: [], decodedOwn: [] };
  // it refuses an empty list, which decodes as "" everywhere else
  const decode = (ids) => ids.length === 0 ? { keep: '', skip: '' } : {
    keep: tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }),
    skip: tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }),
  };
  for (const text of job.texts) {
    const withSpecial = tokenizer.encode(text, { add_special_tokens: true }).ids;
    const plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
    const encoding = { withSpecial, plain };
    if (job.tokens) {
      encoding.withSpecialTokens = withSpecial.map((id) => tokenizer.id_to_token(id) ?? null);
      encoding.plainTokens = plain.map((id) => tokenizer.id_to_token(id) ?? null);
    }
    result.encodings.push(encoding);
    if (job.decodeOwn) result.decodedOwn.push(decode(withSpecial));
  }
  for (const ids of job.decode || []) result.decoded.push(decode(ids));
  return result;
}

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const response = { jobs: [] };
  for (const job of request.jobs) {
    if (job.engine === 'rust') response.jobs.push(await rustJob(request.modules, job));
    else if (job.engine === 'js') response.jobs.push(jsJob(request.modules, job));
    else throw new Error(`unknown engine ${job.engine}`);
  }
  process.stdout.write(JSON.stringify(response));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
