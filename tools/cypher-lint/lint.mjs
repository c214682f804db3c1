#!/usr/bin/env node
// Lints Clarion's Neo4j Cypher with Neo4j's own front end (parser + semantic analysis from
// @neo4j-cypher/language-support), fully offline: Neo4j cannot run where CI runs, so this is
// what stands between a typo in cypher/ and a failed production write.
//
// Usage: node lint.mjs [--model FILE | --no-model] [--no-cache] PATH...
//   PATH is a .cypher file (linted as given) or a directory (every *.cypher below it, except
//   FalkorDB-only files: falkordb.cypher and *.falkordb.cypher).
//   --model FILE   labels, relationship types and property keys of the data model (JSON);
//                  default: cypher/schema/model.json of this repository, when present.
//   --no-model     pass no model: no warnings about unknown labels, types or properties.
//   --no-cache     analyse every statement again (results are cached by content otherwise,
//                  under node_modules/.cache/clarion-cypher-lint).
//
// Every file's first line is a header comment `// params: a, b` (or `// params: -`) naming the
// parameters its statements use. Files holding several statements separated by `;` (schema
// files) are split with the package's own statement splitter and linted one by one.
//
// Output: one JSON report on stdout, {ok, cypherVersion, model, files, statements, diagnostics:
// [{file, statement (index in the file, null for file-level), severity, source ("neo4j": the
// front end, "clarion": this script), message, line, column, endLine, endColumn}]}, lines and
// columns 1-based. Exit 0 when there is no diagnostic at all, 1 when there is
// any diagnostic (errors AND warnings: a warning here means an unknown label, property or
// function, or a deprecation, all of which we want fixed before merge), 2 on a usage or setup
// error (bad path, unreadable model, the Neo4j front end not working).

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The front end (5.6 MB of compiled Java) is imported only once the arguments are valid.
let highlightSyntax;
let lintCypherQuery;
let parseParameters;
let parseStatementsStrs;
let testData;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_MODEL = path.resolve(HERE, '..', '..', 'cypher', 'schema', 'model.json');
const CYPHER_VERSION = 'CYPHER 5'; // production store is Neo4j 5; its default language.
const BUILTIN_PROCEDURE_NAMESPACES = new Set(['db', 'dbms', 'tx', 'cdc']);
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEADER = /^\/\/\s*params:(.*)$/;
const MAX_FILE_BYTES = 1024 * 1024;
const SEVERITY = { 1: 'error', 2: 'warning', 3: 'information', 4: 'hint' };

class UsageError extends Error {}

function parseArgs(argv) {
  const paths = [];
  let model = existsSync(DEFAULT_MODEL) ? DEFAULT_MODEL : null;
  let cache = true;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--model') {
      if (i + 1 >= argv.length) throw new UsageError('--model needs a file argument');
      model = path.resolve(argv[(i += 1)]);
    } else if (arg === '--no-model') {
      model = null;
    } else if (arg === '--no-cache') {
      cache = false;
    } else if (arg === '-h' || arg === '--help') {
      throw new UsageError('usage: node lint.mjs [--model FILE | --no-model] [--no-cache] PATH...');
    } else if (arg.startsWith('--')) {
      throw new UsageError(`unknown option ${arg}; accepted: --model FILE, --no-model, --no-cache`);
    } else {
      paths.push(arg);
    }
  }
  if (paths.length === 0) throw new UsageError('no path given: pass .cypher files or directories');
  return { paths, model, cache };
}

function isFalkorOnly(name) {
  return name === 'falkordb.cypher' || name.endsWith('.falkordb.cypher');
}

function collectFiles(paths) {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith('.cypher') && !isFalkorOnly(entry.name)) files.push(full);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new UsageError(`path not found: ${p}`);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
  return files;
}

function namesFrom(value, where) {
  if (value === undefined || value === null) return [];
  const names = Array.isArray(value) ? value : typeof value === 'object' ? Object.keys(value) : null;
  if (names === null || !names.every((n) => typeof n === 'string' && n.length > 0)) {
    throw new UsageError(`${where}: expected a list of names (or an object keyed by name)`);
  }
  return names;
}

// model.json: {"labels": [...], "relationshipTypes": [...], "propertyKeys": [...]}; snake_case
// keys are accepted too, and labels/types may be objects keyed by name.
function loadModel(file) {
  if (file === null) return {};
  let raw;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read the model ${file}: ${err.message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UsageError(`${file}: expected a JSON object with labels, relationshipTypes, propertyKeys`);
  }
  const pick = (...keys) => keys.map((k) => raw[k]).find((v) => v !== undefined);
  const labels = namesFrom(pick('labels'), `${file} labels`);
  const relationshipTypes = namesFrom(pick('relationshipTypes', 'relationship_types'), `${file} relationshipTypes`);
  const propertyKeys = namesFrom(pick('propertyKeys', 'property_keys'), `${file} propertyKeys`);
  if (labels.length === 0 || relationshipTypes.length === 0) {
    throw new UsageError(`${file}: labels and relationshipTypes must both be non-empty`);
  }
  return propertyKeys.length > 0 ? { labels, relationshipTypes, propertyKeys } : { labels, relationshipTypes };
}

// Built-in functions and procedures of Neo4j, from the package's own snapshot of a Neo4j
// database, without plugins (APOC, GDS): Clarion must run on a plain Neo4j 5.
function builtins() {
  const snapshot = testData?.mockSchema;
  const functions = snapshot?.functions?.[CYPHER_VERSION];
  const procedures = snapshot?.procedures?.[CYPHER_VERSION];
  if (!functions || !procedures) {
    throw new UsageError('this version of @neo4j-cypher/language-support has no function/procedure snapshot');
  }
  const fn = Object.fromEntries(Object.entries(functions).filter(([, f]) => f.isBuiltIn === true));
  const proc = Object.fromEntries(
    Object.entries(procedures).filter(([name]) => BUILTIN_PROCEDURE_NAMESPACES.has(name.split('.')[0])),
  );
  return { functions: { [CYPHER_VERSION]: fn }, procedures: { [CYPHER_VERSION]: proc } };
}

// The semantic analysis swallows its own exceptions; prove it runs before trusting silence.
function assertFrontEndWorks(schema) {
  const probe = lintCypherQuery('MATCH (n) RETURN m', schema, { consoleCommandsEnabled: false });
  if (!probe.diagnostics.some((d) => d.message.includes('Variable `m` not defined'))) {
    throw new UsageError('the Neo4j semantic analysis did not report an undefined variable: it is not working here');
  }
}

// Same rule as clarion.store.cypher.parse: the first non-blank line is the header.
function readHeader(text) {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trim() !== '');
  const m = i === -1 ? null : HEADER.exec(lines[i].trim());
  return m ? { line: i + 1, spec: m[1].trim() } : null;
}

// One statement through the front end: its diagnostics (positions relative to the statement)
// and the parameters it uses. Pure in (statement, schema), hence cacheable.
function lintStatement(chunk, schema, cache) {
  const key = cache.key(chunk, schema.parameters);
  const hit = cache.get(key);
  if (hit !== null) return hit;
  cache.ensureFrontEnd(schema);
  const used = parseParameters(chunk, false);
  const { diagnostics: found, symbolTables } = lintCypherQuery(chunk, schema, { consoleCommandsEnabled: false });
  const seen = new Set(found.map((d) => `${d.range.start.line}:${d.range.start.character}`));
  const extra = modelDiagnostics(chunk, schema, symbolTables.flat());
  const diagnostics = found
    .concat(extra.filter((e) => !seen.has(`${e.range.start.line}:${e.range.start.character}`)))
    .map(({ severity, source, message, range }) => ({ severity, source, message, range }));
  const result = { used, diagnostics };
  cache.put(key, result);
  return result;
}

// Results keyed by everything that decides them (package version, this script, the schema, the
// statement, its declared parameters), so unchanged statements are not re-analysed: the
// semantic analysis takes seconds per large statement on a shared machine. --no-cache skips it.
function makeCache(enabled, schema) {
  const dir = path.join(HERE, 'node_modules', '.cache', 'clarion-cypher-lint');
  const pkg = JSON.parse(readFileSync(path.join(HERE, 'node_modules', '@neo4j-cypher', 'language-support', 'package.json'), 'utf8'));
  const base = createHash('sha256')
    .update(JSON.stringify([process.version, pkg.version, readFileSync(fileURLToPath(import.meta.url), 'utf8'), schema]))
    .digest('hex');
  let checked = false;
  return {
    key: (chunk, params) => createHash('sha256').update(JSON.stringify([base, Object.keys(params).sort(), chunk])).digest('hex'),
    get: (key) => {
      if (!enabled) return null;
      try {
        return JSON.parse(readFileSync(path.join(dir, `${key}.json`), 'utf8'));
      } catch {
        return null;
      }
    },
    put: (key, value) => {
      if (!enabled) return;
      try {
        mkdirSync(dir, { recursive: true });
        const tmp = path.join(dir, `${key}.${process.pid}.tmp`);
        writeFileSync(tmp, JSON.stringify(value));
        renameSync(tmp, path.join(dir, `${key}.json`)); // atomic: a reader never sees half a file
      } catch {
        /* a cache that cannot be written only costs time */
      }
    },
    ensureFrontEnd: (s) => {
      if (!checked) assertFrontEndWorks(s);
      checked = true;
    },
  };
}

function clarionDiag(file, statement, line, message) {
  return { file, statement, severity: 'error', source: 'clarion', message, line, column: 1, endLine: line, endColumn: 1 };
}

function lintFile(file, baseSchema, cache) {
  const diagnostics = [];
  const bytes = statSync(file).size;
  if (bytes > MAX_FILE_BYTES) {
    return { statements: 0, diagnostics: [clarionDiag(file, null, 1, `file is ${bytes} bytes; at most ${MAX_FILE_BYTES}`)] };
  }
  const text = readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
  const header = readHeader(text);
  let declared = [];
  if (header === null) {
    diagnostics.push(clarionDiag(file, null, 1, 'missing header: the first line must be `// params: a, b` or `// params: -`'));
  } else if (header.spec !== '-') {
    declared = header.spec.split(',').map((s) => s.trim().replace(/^\$/, ''));
    const bad = declared.filter((n) => !PARAM_NAME.test(n));
    const dup = declared.filter((n, i) => declared.indexOf(n) !== i);
    if (bad.length > 0 || dup.length > 0 || declared.length === 0) {
      const what = bad.length > 0 ? `invalid names ${JSON.stringify(bad)}` : `duplicates ${JSON.stringify(dup)}`;
      diagnostics.push(
        clarionDiag(file, null, header.line, `bad params header (${what}): expected \`// params: a, b\` or \`// params: -\``),
      );
      declared = declared.filter((n) => PARAM_NAME.test(n));
    }
  }
  const schema = { ...baseSchema, parameters: Object.fromEntries(declared.map((n) => [n, null])) };

  const chunks = parseStatementsStrs(text);
  const used = new Set();
  let statements = 0;
  let lineOffset = 0;
  let columnOffset = 0;
  for (const chunk of chunks) {
    const hasCode = stripComments(chunk).trim().replace(/;$/, '').trim() !== '';
    if (hasCode) {
      const index = statements;
      statements += 1;
      const result = lintStatement(chunk, schema, cache);
      for (const p of result.used) used.add(p);
      for (const d of result.diagnostics) {
        const at = (pos) => ({
          line: pos.line + lineOffset + 1,
          column: pos.character + (pos.line === 0 ? columnOffset : 0) + 1,
        });
        const start = at(d.range.start);
        const end = at(d.range.end);
        diagnostics.push({
          file,
          statement: index,
          severity: SEVERITY[d.severity] ?? 'error',
          source: d.source ?? 'neo4j',
          message: d.message,
          line: start.line,
          column: start.column,
          endLine: end.line,
          endColumn: end.column,
        });
      }
    }
    const newlines = chunk.split('\n');
    lineOffset += newlines.length - 1;
    columnOffset = newlines.length > 1 ? newlines.at(-1).length : columnOffset + chunk.length;
  }
  if (statements === 0) diagnostics.push(clarionDiag(file, null, 1, 'no Cypher statement in this file'));
  for (const name of declared) {
    if (!used.has(name)) {
      diagnostics.push(clarionDiag(file, null, header.line, `parameter $${name} is declared in the header but no statement uses it`));
    }
  }
  diagnostics.sort((a, b) => a.line - b.line || a.column - b.column || a.message.localeCompare(b.message));
  return { statements, diagnostics };
}

// The front end checks labels and properties only where a statement reads them; a typo in a
// MERGE or SET would silently create a new label or property, so check writes against the
// model too: every label/type token, properties of node/relationship variables (`n.key`), and
// keys of pattern property maps (`(n:Label {key: ...})`).
function modelDiagnostics(chunk, schema, symbols) {
  if (!schema.labels) return [];
  const names = new Set([...schema.labels, ...schema.relationshipTypes]);
  const keys = schema.propertyKeys ? new Set(schema.propertyKeys) : null;
  const isEntity = (v) => {
    const mine = symbols.filter((s) => s.variable === v);
    return mine.some((s) => s.types.length > 0 && s.types.every((t) => t === 'Node' || t === 'Relationship'));
  };
  const tokens = highlightSyntax(chunk).filter((t) => t.tokenType !== 'comment');
  const out = [];
  const report = (t, what) => {
    const start = { line: t.position.line, character: t.position.startCharacter };
    const end = { line: t.position.line, character: t.position.startCharacter + t.token.length };
    const where = schema.modelFile ?? 'the model';
    out.push({ severity: 2, source: 'clarion', range: { start, end }, message: `${what} is not in the data model (${where})` });
  };
  const stack = [];
  tokens.forEach((t, i) => {
    const prev = tokens[i - 1];
    const next = tokens[i + 1];
    if (t.tokenType === 'bracket') {
      if ('({['.includes(t.token)) {
        const patternMap =
          t.token === '{' &&
          prev !== undefined &&
          (prev.tokenType === 'label' ||
            (prev.tokenType === 'variable' && ['(', '['].includes(tokens[i - 2]?.token)));
        stack.push(patternMap);
      } else {
        stack.pop();
      }
    } else if (t.tokenType === 'label') {
      const name = t.token.replace(/^`|`$/g, '');
      if (!names.has(name)) report(t, `Label or relationship type ${name}`);
    } else if (t.tokenType === 'property' && keys !== null && !keys.has(t.token)) {
      const ofEntity = prev?.token === '.' && tokens[i - 2]?.tokenType === 'variable' && isEntity(tokens[i - 2].token);
      const inPatternMap = stack.at(-1) === true && next?.token === ':';
      if (ofEntity || inPatternMap) report(t, `Property key ${t.token}`);
    }
  });
  return out;
}

// Drops // and /* */ comments (outside strings) to tell a comment-only tail from a statement.
function stripComments(s) {
  let out = '';
  for (let i = 0; i < s.length; i += 1) {
    const c = s[i];
    if (c === "'" || c === '"' || c === '`') {
      const j = s.indexOf(c, i + 1);
      const end = j === -1 ? s.length : j;
      out += s.slice(i, end + 1);
      i = end;
    } else if (c === '/' && s[i + 1] === '/') {
      const j = s.indexOf('\n', i);
      i = j === -1 ? s.length : j - 1;
    } else if (c === '/' && s[i + 1] === '*') {
      const j = s.indexOf('*/', i + 2);
      if (j === -1) return `${out}/*`; // unclosed: leave it to the parser to report
      i = j + 1;
    } else {
      out += c;
    }
  }
  return out;
}

async function main() {
  try {
    const args = parseArgs(process.argv.slice(2));
    const files = collectFiles(args.paths);
    if (files.length === 0) throw new UsageError(`no Neo4j .cypher file under ${args.paths.join(', ')}`);
    if (args.model !== null) loadModel(args.model); // fail on a bad model before the slow import
    ({ highlightSyntax, lintCypherQuery, parseParameters, parseStatementsStrs, testData } = await import(
      '@neo4j-cypher/language-support'
    ));
    const schema = { ...loadModel(args.model), ...builtins(), defaultLanguage: CYPHER_VERSION };
    if (args.model !== null) schema.modelFile = args.model;
    const cache = makeCache(args.cache, schema);
    const report = { ok: true, cypherVersion: CYPHER_VERSION, model: args.model, files: [], statements: 0, diagnostics: [] };
    for (const file of files) {
      const { statements, diagnostics } = lintFile(file, schema, cache);
      report.files.push(file);
      report.statements += statements;
      report.diagnostics.push(...diagnostics);
    }
    report.ok = report.diagnostics.length === 0;
    // exitCode, not exit(): writes to a pipe are asynchronous, exit() would cut a long report.
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`cypher-lint: ${err.message}\n`);
    process.exitCode = 2;
  }
}

await main();
