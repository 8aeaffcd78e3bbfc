// Builds a JavaScript Lutetia plugin into a WebAssembly component.
//
// Run by `lutetia plugin build DIR`, which first prepares STAGE (DIR/.lutetia-build):
// STAGE/wit/ (the lutetia WIT files plus lutetia-build.wit, whose world `plugin-build`
// imports only the interfaces the manifest asks for), STAGE/lutetia.js (the SDK) and
// STAGE/build.mjs (this file). Then:
//
//     node STAGE/build.mjs DIR STAGE OUTPUT.wasm IMPORTS
//
//   DIR      the plugin folder (plugin.toml, package.json, sources)
//   STAGE    the staging folder prepared as above
//   OUTPUT   where to write the component (its folder is created if needed)
//   IMPORTS  the WIT interfaces of the build world, comma-separated (`log,config,kv,store`)
//
// Environment: LUTETIA_JS_TOOLS, a folder whose node_modules holds the pinned tools of
// plugins-sdk/js/tools (@bytecodealliance/componentize-js, its undeclared dependency
// @bytecodealliance/preview2-shim, es-module-lexer); without it, DIR/node_modules.
// LUTETIA_COMPONENTIZE_JS_VERSION (optional): the componentize-js version expected (a
// different one only warns).
//
// Exit status: 0 built (one line on stdout: the output, its size, the imports, the time);
// 1 the plugin does not build (its sources, its package.json, or componentize-js refused
// it: stderr says why, with file:line when known); 2 wrong arguments, missing or mismatched
// tools, an unwritable output, or a failure of this script itself.
//
// What it does: copies the plugin's .js/.mjs files (not node_modules, dist, .lutetia-build
// or dot-folders) to STAGE/src/ with the same relative paths, rewriting the specifiers
// equal to "lutetia" into the relative path of STAGE/lutetia.js (exact positions from
// es-module-lexer); checks that the modules reachable from package.json's `main` (default
// plugin.js) import only "lutetia" and their own files; writes STAGE/entry.js, which binds
// the WIT interfaces to the SDK and exports handler/subscriber/scheduler/lifecycle from the
// plugin's default export; and runs componentize-js on it.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { spawnSync } from "node:child_process";

/** Pinned versions (plugins-sdk/js/tools/package.json). */
const COMPONENTIZE_JS_VERSION = process.env.LUTETIA_COMPONENTIZE_JS_VERSION || "0.23.0";
const ES_MODULE_LEXER_VERSION = "1.7.0";
/** componentize-js imports it without declaring it; 0.26 fails to read WIT folders (os error 44). */
const PREVIEW2_SHIM_VERSION = "0.25.0";
const INSTALL_HINT =
  `Install the pinned tools once and point LUTETIA_JS_TOOLS at them:\n` +
  `    cd plugins-sdk/js/tools && npm ci && export LUTETIA_JS_TOOLS=$PWD\n` +
  `or, anywhere: npm install --prefix TOOLS_DIR @bytecodealliance/componentize-js@${COMPONENTIZE_JS_VERSION} ` +
  `@bytecodealliance/preview2-shim@${PREVIEW2_SHIM_VERSION} es-module-lexer@${ES_MODULE_LEXER_VERSION}`;

/** The interfaces a build world may import, and their WIT names. */
const INTERFACES = ["log", "config", "kv", "store", "files", "mail", "events"];

/** Folders never copied. */
const SKIPPED_DIRS = new Set(["node_modules", ".lutetia-build", "dist"]);

/** A failure of the plugin itself (exit 1). */
class PluginError extends Error {}
/** A wrong invocation or environment (exit 2). */
class UsageError extends Error {}

function parseArgs() {
  const args = process.argv.slice(2);
  if (args.length !== 4) {
    throw new UsageError("usage: node build.mjs DIR STAGE OUTPUT.wasm IMPORTS (IMPORTS: comma-separated, e.g. log,config,kv)");
  }
  const [dirArg, stageArg, outputArg, importsArg] = args;
  const dir = resolve(dirArg);
  const stage = resolve(stageArg);
  const output = resolve(outputArg);
  const imports = importsArg.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const name of imports) {
    if (!INTERFACES.includes(name)) throw new UsageError(`unknown interface ${JSON.stringify(name)} in IMPORTS (known: ${INTERFACES.join(", ")})`);
  }
  if (!isDir(dir)) throw new UsageError(`${dirArg} is not a folder`);
  if (!isDir(join(stage, "wit"))) throw new UsageError(`${join(stageArg, "wit")} is missing: the stage must hold the WIT files`);
  if (!existsSync(join(stage, "lutetia.js"))) throw new UsageError(`${join(stageArg, "lutetia.js")} is missing: the stage must hold the SDK`);
  return { dirArg, dir, stage, output, imports };
}

/**
 * Finds a package's ES module entry under one of `roots` (folders holding node_modules).
 * @param {string[]} roots
 * @param {string} name
 * @param {string[]} [nested] extra package folders to look in (nested node_modules)
 */
function findPackage(roots, name, nested = []) {
  const candidates = [];
  for (const root of roots) {
    candidates.push(join(root, "node_modules", ...name.split("/")));
    for (const n of nested) candidates.push(join(root, "node_modules", ...n.split("/"), "node_modules", ...name.split("/")));
  }
  for (const folder of candidates) {
    const manifestPath = join(folder, "package.json");
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    const entry = esmEntry(manifest);
    if (entry) return { folder, version: manifest.version, entry: join(folder, entry) };
  }
  return null;
}

/** The `import` entry of a package.json. */
function esmEntry(manifest) {
  const exp = manifest.exports;
  const pick = (e) => (typeof e === "string" ? e : e && typeof e === "object" ? e.import ?? e.module ?? e.default : undefined);
  if (exp !== undefined) {
    const dot = typeof exp === "object" && exp !== null && "." in exp ? exp["."] : exp;
    const found = pick(dot);
    if (typeof found === "string") return found;
  }
  return manifest.module ?? manifest.main;
}

async function loadTools(dir) {
  const roots = [];
  if (process.env.LUTETIA_JS_TOOLS) roots.push(resolve(process.env.LUTETIA_JS_TOOLS));
  roots.push(dir);
  const componentizePkg = findPackage(roots, "@bytecodealliance/componentize-js");
  const lexerPkg = findPackage(roots, "es-module-lexer", ["@bytecodealliance/componentize-js"]);
  if (!componentizePkg || !lexerPkg) {
    const missing = [!componentizePkg && "@bytecodealliance/componentize-js", !lexerPkg && "es-module-lexer"].filter(Boolean).join(" and ");
    throw new UsageError(`${missing} not found in ${roots.map((r) => join(r, "node_modules")).join(" nor in ")}.\n${INSTALL_HINT}`);
  }
  if (componentizePkg.version !== COMPONENTIZE_JS_VERSION) {
    process.stderr.write(`warning: componentize-js ${componentizePkg.version} found in ${componentizePkg.folder}; this SDK is tested with ${COMPONENTIZE_JS_VERSION}\n`);
  }
  // Where Node resolves componentize-js's undeclared import from: the node_modules holding it.
  const shimManifest = join(dirname(dirname(componentizePkg.folder)), "@bytecodealliance", "preview2-shim", "package.json");
  const shimVersion = existsSync(shimManifest) ? JSON.parse(readFileSync(shimManifest, "utf8")).version : null;
  if (shimVersion === null) {
    throw new UsageError(`@bytecodealliance/preview2-shim (which componentize-js needs) is not installed next to ${componentizePkg.folder}.\n${INSTALL_HINT}`);
  }
  if (shimVersion !== PREVIEW2_SHIM_VERSION) {
    process.stderr.write(`warning: @bytecodealliance/preview2-shim ${shimVersion} found; componentize-js is tested here with ${PREVIEW2_SHIM_VERSION} (0.26 cannot read the WIT folder)\n`);
  }
  let componentize;
  let lexer;
  try {
    ({ componentize } = await import(pathToFileURL(componentizePkg.entry).href));
    lexer = await import(pathToFileURL(lexerPkg.entry).href);
  } catch (e) {
    throw new UsageError(`cannot load componentize-js from ${componentizePkg.folder}: ${e.message}\n${INSTALL_HINT}`);
  }
  await lexer.init;
  return { componentize, parse: lexer.parse };
}

function isDir(p) {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The plugin's `main` module, relative to DIR, with forward slashes. */
function mainModule(dir, dirArg) {
  const manifestPath = join(dir, "package.json");
  let main = "plugin.js";
  if (existsSync(manifestPath)) {
    let manifest;
    try {
      manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    } catch (e) {
      throw new PluginError(`${join(dirArg, "package.json")}: not valid JSON: ${e.message}`);
    }
    if (manifest.type !== "module") {
      process.stderr.write(`warning: ${join(dirArg, "package.json")} should say "type": "module" (the plugin's files are ES modules)\n`);
    }
    if (manifest.main !== undefined) {
      if (typeof manifest.main !== "string" || manifest.main === "") throw new PluginError(`${join(dirArg, "package.json")}: "main" must be a file name`);
      main = manifest.main;
    }
  }
  const full = resolve(dir, main);
  const rel = relative(dir, full);
  if (rel.startsWith("..") || isAbsolute(rel)) throw new PluginError(`"main" (${main}) must be inside the plugin folder`);
  if (![".js", ".mjs"].includes(extname(rel))) throw new PluginError(`"main" (${main}) must be a .js or .mjs file`);
  if (!existsSync(full)) throw new PluginError(`the main module ${join(dirArg, rel)} does not exist (set "main" in package.json, default plugin.js)`);
  return rel.split(sep).join("/");
}

/** The plugin's .js/.mjs files, relative to DIR with forward slashes. */
function sourceFiles(dir) {
  const out = [];
  const walk = (folder, prefix) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (SKIPPED_DIRS.has(entry.name) || entry.name.startsWith(".")) continue;
        walk(join(folder, entry.name), prefix + entry.name + "/");
      } else if (entry.isFile() && [".js", ".mjs"].includes(extname(entry.name))) {
        out.push(prefix + entry.name);
      }
    }
  };
  walk(dir, "");
  return out.sort();
}

/** 1-based line and column of an offset. */
function lineCol(text, offset) {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      last = i;
    }
  }
  return `${line}:${offset - last}`;
}

function stageSources(parse, { dirArg, dir, stage, imports }) {
  const main = mainModule(dir, dirArg);
  const files = sourceFiles(dir);
  const sdkPath = join(stage, "lutetia.js");
  const srcRoot = join(stage, "src");
  rmSync(srcRoot, { recursive: true, force: true });

  /** Lexed modules: rel path → {text, imports, exports} or {error}. */
  const lexed = new Map();
  for (const rel of files) {
    const text = readFileSync(join(dir, rel), "utf8");
    try {
      const [imps, exps] = parse(text, join(dirArg, rel));
      lexed.set(rel, { text, imports: imps, exports: exps });
    } catch (e) {
      lexed.set(rel, { text, error: e });
    }
  }

  // The modules reachable from main must lex, and import only "lutetia" and their own files.
  const problems = [];
  const reachable = new Set();
  const queue = [main];
  while (queue.length > 0) {
    const rel = queue.shift();
    if (reachable.has(rel)) continue;
    reachable.add(rel);
    const mod = lexed.get(rel);
    if (mod.error) {
      problems.push(syntaxError(join(dirArg, rel), mod));
      continue;
    }
    for (const imp of mod.imports) {
      if (imp.d === -2) continue; // import.meta
      const where = `${join(dirArg, rel)}:${lineCol(mod.text, imp.ss)}`;
      if (imp.d >= 0) {
        problems.push(`${where}: dynamic import() is not supported in a plugin (the module graph is fixed at build time): use a static import`);
        continue;
      }
      const spec = imp.n;
      if (spec === "lutetia") continue;
      if (spec === undefined) {
        problems.push(`${where}: cannot read this import's specifier`);
      } else if (spec.startsWith("./") || spec.startsWith("../")) {
        const target = relative(dir, resolve(dir, dirname(rel), spec)).split(sep).join("/");
        if (target.startsWith("../") || isAbsolute(target)) {
          problems.push(`${where}: "${spec}" is outside the plugin folder`);
        } else if (![".js", ".mjs"].includes(extname(target))) {
          problems.push(`${where}: "${spec}": a plugin imports only .js/.mjs modules (write the extension: "${spec}.js"?)`);
        } else if (!lexed.has(target)) {
          problems.push(`${where}: "${spec}": no such file ${existsSync(join(dir, target)) ? "among the copied sources (node_modules, dist and dot-folders are skipped)" : ""}`.trimEnd());
        } else {
          queue.push(target);
        }
      } else {
        problems.push(
          `${where}: cannot import "${spec}": a plugin imports only "lutetia" (the SDK) and its own modules by relative path ("./x.js"); npm packages and node: builtins are not available`,
        );
      }
    }
  }
  const mainMod = lexed.get(main);
  if (!mainMod.error && !mainMod.exports.some((e) => e.n === "default")) {
    problems.push(`${join(dirArg, main)}: no default export: the main module must \`export default { handle(request) { ... } }\``);
  }
  if (problems.length > 0) throw new PluginError(problems.join("\n"));

  // Copy every source, rewriting the "lutetia" specifiers.
  for (const rel of files) {
    const mod = lexed.get(rel);
    const dest = join(srcRoot, ...rel.split("/"));
    mkdirSync(dirname(dest), { recursive: true });
    let text = mod.text;
    if (!mod.error) {
      let spec = relative(dirname(dest), sdkPath).split(sep).join("/");
      if (!spec.startsWith(".")) spec = "./" + spec;
      const edits = mod.imports.filter((i) => i.n === "lutetia" && i.d === -1).sort((a, b) => b.s - a.s);
      for (const imp of edits) text = text.slice(0, imp.s) + spec + text.slice(imp.e);
    }
    writeFileSync(dest, text);
  }

  // The entry module.
  const lines = [
    "// Generated by `lutetia plugin build`: binds the WIT interfaces to the SDK and exports the plugin.",
    ...imports.map((name) => `import * as ${name} from "lutetia:plugin/${name}@0.1.0";`),
    `import { __bind, __exports } from "./lutetia.js";`,
    `import plugin from ${JSON.stringify("./src/" + main)};`,
    "",
    `__bind({ ${imports.join(", ")} });`,
    "const exported = __exports(plugin);",
    "export const handler = exported.handler;",
    "export const subscriber = exported.subscriber;",
    "export const scheduler = exported.scheduler;",
    "export const lifecycle = exported.lifecycle;",
    "",
  ];
  writeFileSync(join(stage, "entry.js"), lines.join("\n"));
}

/**
 * The message of a module es-module-lexer could not read: Node's own parser says where and
 * why (`node --check`); the lexer's position otherwise.
 * @param {string} shown the file's path as shown to the author
 * @param {{text: string, error: any}} mod
 */
function syntaxError(shown, mod) {
  const check = spawnSync(process.execPath, ["--check", "--input-type=module"], { input: mod.text, encoding: "utf8" });
  const out = `${check.stderr ?? ""}`;
  const match = /^\[stdin\]:(\d+)\n([^\n]*)\n([^\n]*)\n[\s\S]*?^(SyntaxError: [^\n]*)/m.exec(out);
  if (check.status !== 0 && match) {
    return `${shown}:${match[1]}: ${match[4]}\n    ${match[2]}\n    ${match[3]}`;
  }
  const where = typeof mod.error.idx === "number" ? `${shown}:${lineCol(mod.text, mod.error.idx)}` : shown;
  return `${where}: syntax error (${mod.error.message})`;
}

/** Rewrites `src/<file>:L:C` in componentize's messages into the plugin's own paths. */
function pluginPaths(message, dirArg) {
  // Drop the engine's echo of the same error as an unhandled rejection.
  message = message
    .split("\n")
    .filter((line) => !/^(Additionally, some promises were rejected|Promise rejected but never handled:)/.test(line))
    .join("\n");
  return message.replace(/(^|[\s(@"'])src\/([^\s:"')]+\.m?js)(?=:\d)/gm, (_, before, rel) => before + join(dirArg, rel));
}

async function run() {
  const started = Date.now();
  let opts;
  let tools;
  try {
    opts = parseArgs();
    tools = await loadTools(opts.dir);
    stageSources(tools.parse, opts);
  } catch (e) {
    return fail(e);
  }
  let component;
  const cwd = process.cwd();
  try {
    // componentize-js maps the folder of the source (or the cwd, if the source is below it)
    // to `/` inside the engine: run from STAGE so that paths are `src/...`.
    process.chdir(opts.stage);
    ({ component } = await tools.componentize({
      sourcePath: join(opts.stage, "entry.js"),
      witPath: join(opts.stage, "wit"),
      worldName: "plugin-build",
      disableFeatures: ["http", "fetch-event"],
    }));
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const cleaned = message.replace(/^Failed to initialize component \(wizer \([^)]*\)\):\n?/, "");
    if (/os error 44/.test(message)) {
      return fail(new UsageError(`componentize-js could not read the staged files (${cleaned.split("\n")[0]}): a tools mismatch, not the plugin.\n${INSTALL_HINT}`));
    }
    return fail(new PluginError(`componentize-js could not build the plugin:\n${pluginPaths(cleaned, opts.dirArg)}`));
  } finally {
    process.chdir(cwd);
  }
  try {
    mkdirSync(dirname(opts.output), { recursive: true });
    writeFileSync(opts.output, component);
  } catch (e) {
    return fail(new UsageError(`cannot write ${opts.output}: ${e.message}`));
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`built ${opts.output} (${component.length} bytes, imports ${opts.imports.join(", ") || "nothing"}) in ${seconds} s\n`);
  return 0;
}

function fail(e) {
  if (e instanceof PluginError) {
    process.stderr.write(`error: ${e.message}\n`);
    return 1;
  }
  if (e instanceof UsageError) {
    process.stderr.write(`error: ${e.message}\n`);
    return 2;
  }
  process.stderr.write(`error: ${e && e.stack ? e.stack : String(e)}\n`);
  return 2;
}

process.exitCode = await run();
