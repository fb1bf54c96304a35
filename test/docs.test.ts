/**
 * The docs are kept true to the code; what a machine can check of that is checked here, so
 * that a rename or a new export without its line in the docs fails a test rather than a
 * reader. docs/API.md names every export of both entry points (values and types, `sys`
 * included), rawio's own error codes and each command's flags as the command's `--help`
 * lists them; every name it and the README give in code (`sys.<name>`, `Name`,
 * `Name.member`, an `import { … } from 'rawio'`) is declared by the package; every relative
 * link and repository path in the markdown files resolves; the file map of
 * docs/ARCHITECTURE.md names every file of src/, bench/, scripts/ and native/ and nothing that is
 * gone; the npm scripts and environment variables the docs and code name exist on the other
 * side; package-lock.json's root entry matches package.json, and no package it installs
 * refuses a Node version rawio supports; and the connection limits'
 * defaults in the README's table are the ones `resolveServeOptions` fills in. Reads the
 * built package (dist/), as the other tests do.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const DOCS = [
  'README.md',
  'CHANGELOG.md',
  'docs/API.md',
  'docs/ARCHITECTURE.md',
  'docs/BUILDING.md',
  'docs/DESIGN.md',
  'docs/PERFORMANCE.md',
  'docs/PROTOCOLS.md',
  'bench/RESULTS.md',
];
const api = read('docs/API.md');
/** Whether `name` stands in `text` as a whole word. */
const names = (text: string, name: string) =>
  new RegExp(`(?<![\\w$])${name.replace(/\$/g, '\\$')}(?![\\w$])`).test(text);

/** Every file under `dir` (repository-relative), recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
  );
}

describe('docs/API.md names every export', () => {
  const entries = { root: 'dist/src/index.d.ts', loadgen: 'dist/src/loadgen/index.d.ts', cjs: 'index.d.cts' };
  const program = ts.createProgram(
    Object.values(entries).map((f) => join(root, f)),
    { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const exportsOf = (sym: ts.Symbol) => checker.getExportsOfModule(sym);
  const resolved = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);

  /** Every name an entry point's declarations export, `sys`'s members as `sys.<name>`. */
  function declared(file: string): string[] {
    const module = checker.getSymbolAtLocation(program.getSourceFile(join(root, file))!)!;
    return exportsOf(module).flatMap((e) =>
      e.name === 'sys' ? ['sys', ...exportsOf(resolved(e)).map((s) => `sys.${s.name}`)] : [e.name],
    );
  }

  it.each(Object.entries(entries))('every declaration of the %s entry point (%s)', (_, file) => {
    const all = declared(file);
    expect(all.length).toBeGreaterThan(10);
    // sys.<name>: named either with its prefix or in the sys section's code block
    const missing = all.filter((n) => !names(api, n) && !(n.startsWith('sys.') && names(api, n.slice(4))));
    expect(missing).toEqual([]);
  });

  it('every runtime export of the root, of sys and of rawio/loadgen', async () => {
    const rawio = (await import(join(root, 'dist/src/index.js'))) as Record<string, unknown>;
    const loadgen = (await import(join(root, 'dist/src/loadgen/index.js'))) as Record<string, unknown>;
    const values = [
      ...Object.keys(rawio),
      ...Object.keys(rawio.sys as object).map((k) => `sys.${k}`),
      ...Object.keys(loadgen),
    ];
    expect(values).toContain('serve');
    expect(values.filter((n) => !names(api, n) && !(n.startsWith('sys.') && names(api, n.slice(4))))).toEqual([]);
  });

  it('every field of every exported options type (…Options, …Setup, …Limits)', () => {
    const missing: string[] = [];
    let fields = 0;
    for (const file of [entries.root, entries.loadgen]) {
      const module = checker.getSymbolAtLocation(program.getSourceFile(join(root, file))!)!;
      for (const e of exportsOf(module)) {
        if (!/(Options|Setup|Limits)$/.test(e.name) || e.name.startsWith('Resolved')) continue;
        const sym = resolved(e);
        if (!(sym.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias))) continue;
        for (const p of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(sym))) {
          fields++;
          if (!names(api, p.name)) missing.push(`${e.name}.${p.name}`);
        }
      }
    }
    expect(fields).toBeGreaterThan(100);
    expect(missing).toEqual([]);
  });

  it("rawio's own error codes", () => {
    const codes = new Set(
      filesUnder('src').flatMap((f) => [...read(f).matchAll(/\bERR_RAWIO_[A-Z_]+/g)].map((m) => m[0])),
    );
    expect(codes.size).toBeGreaterThan(5);
    expect([...codes].filter((c) => !api.includes(`\`${c}\``))).toEqual([]);
  });

  it('every model, and every serve() option', async () => {
    const { modelNames, serveOptionNames } = (await import(join(root, 'dist/src/index.js'))) as {
      modelNames: readonly string[];
      serveOptionNames: readonly string[];
    };
    const servers = api.slice(api.indexOf('## Servers'));
    expect(modelNames.filter((m) => !servers.includes(`'${m}'`))).toEqual([]);
    expect(
      serveOptionNames.filter((o) => !new RegExp(`\\b${o}\\??:`).test(servers) && !names(servers, `${o}\\?`)),
    ).toEqual([]);
  });
});

describe('every name the docs give exists', () => {
  // The other direction of the test above: a name docs/API.md (or the README, in its code)
  // gives as rawio's must be one the package declares, so a rename or a removal the docs
  // missed fails here. Read from the declarations, types included, as a user's editor does.
  const program = ts.createProgram(
    ['dist/src/index.d.ts', 'dist/src/loadgen/index.d.ts'].map((f) => join(root, f)),
    { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const resolved = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exportsOf = (sym: ts.Symbol) =>
    new Map(checker.getExportsOfModule(sym).map((e) => [e.name, resolved(e)] as const));
  const entry = (f: string) => exportsOf(checker.getSymbolAtLocation(program.getSourceFile(join(root, f))!)!);
  const rootExports = entry('dist/src/index.d.ts');
  const loadgenExports = entry('dist/src/loadgen/index.d.ts');
  const sysExports = exportsOf(rootExports.get('sys')!);
  /** The members a name has: a value's properties (statics) and its instance or interface type's. */
  function members(sym: ts.Symbol): Set<string> {
    const out = new Set<string>();
    const add = (t: ts.Type) => checker.getPropertiesOfType(t).forEach((p) => out.add(p.name));
    if (sym.flags & ts.SymbolFlags.Value) add(checker.getTypeOfSymbol(sym));
    if (sym.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias))
      add(checker.getDeclaredTypeOfSymbol(sym));
    return out;
  }
  /** What a doc writes as code: its code blocks less their comments, and its `spans`. */
  function codeOf(text: string): string {
    const blocks = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\/\/.*$/gm, ''));
    const spans = [...text.replace(/```[a-z]*\n[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
    return [...blocks, ...spans].join('\n');
  }
  // Capitalised words in code that name no rawio export: units, Node's and the web's
  // classes and error names, HTTP header words.
  const NOT_RAWIO = new Set(['KiB', 'MiB', 'GiB', 'SystemError', 'AbortError', 'Content', 'Continue', 'Retry']);

  it.each(['docs/API.md', 'README.md'])('%s: every sys.<name>, Name and Name.member is declared', (file) => {
    const code = codeOf(read(file));
    const missing = new Set<string>();
    for (const [, n] of code.matchAll(/\bsys\.([A-Za-z_]\w*)/g)) if (!sysExports.has(n!)) missing.add(`sys.${n}`);
    for (const [, name, member] of code.matchAll(/(?<![\w$.'"-])([A-Z][a-z]\w*)(?:\.([a-z_]\w*))?/g)) {
      const sym = rootExports.get(name!) ?? loadgenExports.get(name!) ?? sysExports.get(name!);
      if (!sym) {
        if (!NOT_RAWIO.has(name!) && !(name! in globalThis)) missing.add(name!);
      } else if (member && !members(sym).has(member)) missing.add(`${name}.${member}`);
    }
    expect(code.length).toBeGreaterThan(1000);
    expect([...missing]).toEqual([]);
  });

  it.each(DOCS)('%s: every name imported from rawio or rawio/loadgen is exported there', (file) => {
    const missing: string[] = [];
    for (const [, list, from] of read(file).matchAll(/import\s*\{([^}]*)\}\s*from\s*'(rawio(?:\/loadgen)?)'/g)) {
      const exported = from === 'rawio' ? rootExports : loadgenExports;
      for (const spec of list!.split(',')) {
        const name = spec
          .trim()
          .replace(/^type\s+/, '')
          .split(/\s+as\s+/)[0]!;
        if (name && !exported.has(name)) missing.push(`${name} from '${from}'`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('command-line flags', () => {
  /** The `--flags` of the lines of `text` that start a `rawio <command>` usage, continuation lines included. */
  function documented(text: string, command: string): Set<string> {
    const out = new Set<string>();
    for (const block of text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
      let inCommand = false;
      for (const line of block[1]!.split('\n')) {
        const start = /^\s*rawio (\w+)/.exec(line);
        if (start) inCommand = start[1] === command;
        else if (!/^\s/.test(line)) inCommand = false;
        if (!inCommand) continue;
        for (const m of line.matchAll(/--([a-z][a-z-]*)/g)) out.add(m[1]!);
      }
    }
    return out;
  }
  const flagsOf = (usage: string) => new Set([...usage.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!));
  /** The flags a `--help` text lists, one option a line. */
  const helpFlags = (help: string) => new Set([...help.matchAll(/^ +--([a-z][a-z-]*)/gm)].map((m) => m[1]!));

  it.each(['probe', 'serve', 'loadgen', 'bench'])(
    'rawio %s: API.md lists the flags its --help does, and the README none it lacks',
    async (command) => {
      const cli = (await import(join(root, 'dist/src/cli.js'))) as {
        commands: Record<string, { usage: string; help?: () => Promise<string> }>;
      };
      const bench = (await import(join(root, 'dist/bench/main.js'))) as { BENCH_USAGE: string };
      const remote = (await import(join(root, 'dist/src/bench-remote.js'))) as { REMOTE_USAGE: string };
      const loadgenFlags = helpFlags(await cli.commands.loadgen!.help!());
      const c = cli.commands[command]!;
      const usage =
        command === 'bench'
          ? new Set([...helpFlags(bench.BENCH_USAGE), ...helpFlags(remote.REMOTE_USAGE), ...loadgenFlags])
          : c.help
            ? helpFlags(await c.help())
            : flagsOf(c.usage);
      expect(usage.size).toBeGreaterThan(1);
      const inApi = documented(api, command);
      if (command !== 'bench') expect([...usage].filter((f) => f !== 'help' && !inApi.has(f))).toEqual([]);
      usage.add('help');
      expect([...inApi].filter((f) => !usage.has(f))).toEqual([]);
      expect([...documented(read('README.md'), command)].filter((f) => !usage.has(f))).toEqual([]);
    },
  );

  it.each(['probe', 'serve', 'loadgen', 'bench'])(
    "rawio %s: the README's command line section lists every flag its --help does",
    async (command) => {
      const cli = (await import(join(root, 'dist/src/cli.js'))) as {
        commands: Record<string, { usage: string; help?: () => Promise<string> }>;
      };
      const bench = (await import(join(root, 'dist/bench/main.js'))) as { BENCH_USAGE: string };
      const remote = (await import(join(root, 'dist/src/bench-remote.js'))) as { REMOTE_USAGE: string };
      const c = cli.commands[command]!;
      // (rawio bench --target takes every loadgen flag too; the README says so rather than list them again)
      const usage =
        command === 'bench'
          ? new Set([...helpFlags(bench.BENCH_USAGE), ...helpFlags(remote.REMOTE_USAGE)])
          : c.help
            ? helpFlags(await c.help())
            : flagsOf(c.usage);
      usage.delete('help');
      const readme = read('README.md');
      const section = readme.slice(readme.indexOf('## The command line'));
      const inReadme = documented(section.slice(0, section.indexOf('\n## ', 1)), command);
      expect([...usage].filter((f) => !inReadme.has(f))).toEqual([]);
    },
  );

  it("rawio serve's --help lists a flag for every option the command line sets", async () => {
    const { serveUsage } = (await import(join(root, 'dist/src/serve-cli.js'))) as { serveUsage: string };
    const { serveOptionTable } = (await import(join(root, 'dist/src/models/serve-options.js'))) as {
      serveOptionTable: Record<string, { cli: string }>;
    };
    const flags = Object.entries(serveOptionTable)
      .filter(([, row]) => row.cli !== 'none')
      .map(([key]) => key.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`));
    expect(flags.filter((f) => !flagsOf(serveUsage).has(f))).toEqual([]);
  });
});

describe('stated defaults', () => {
  /** Each `--flag` of a `--help` text with the words up to the next flag. */
  const flagTexts = (help: string) =>
    new Map([...help.matchAll(/^ +--([a-z][a-z-]*)([\s\S]*?)(?=^ +--|^\S|(?![\s\S]))/gm)].map((m) => [m[1]!, m[2]!]));
  /** '64 MiB' → 67108864, 'no limit' → Infinity, a word as itself. */
  function valueOf(text: string): number | string {
    const units: Record<string, number> = { '': 1, KiB: 1024, MiB: 1 << 20 };
    const n = /^(\d[\d ]*)(?: (KiB|MiB))?$/.exec(text.trim());
    if (n) return Number(n[1]!.replace(/ /g, '')) * units[n[2] ?? '']!;
    return text.trim() === 'no limit' ? Infinity : text.trim();
  }

  it("rawio serve --help states resolveServeOptions' defaults", async () => {
    const { serveUsage } = (await import(join(root, 'dist/src/serve-cli.js'))) as { serveUsage: string };
    const { resolveServeOptions } = (await import(join(root, 'dist/src/index.js'))) as {
      resolveServeOptions(o: object): Record<string, unknown>;
    };
    const defaults = resolveServeOptions({ model: 'single', protocol: 'echo' });
    const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const checked: string[] = [];
    for (const [flag, text] of flagTexts(serveUsage)) {
      const key = camel(flag);
      // "(default 511)", "(default: no limit)", "default 0: never)": the words up to the first : ; or )
      const m = /\(?default:? ([^:;)]+)/.exec(text.replace(/\s+/g, ' '));
      if (!m || !(key in defaults) || /the CPU count/.test(m[1]!)) continue;
      expect(valueOf(m[1]!), flag).toEqual(defaults[key]);
      checked.push(flag);
    }
    expect(checked).toEqual(
      expect.arrayContaining(['host', 'port', 'backend', 'accept', 'transfer', 'directio', 'backlog', 'max-queue']),
    );
    expect(checked).toEqual(expect.arrayContaining(['max-in-flight', 'max-output', 'idle-timeout', 'max-connections']));
  });
});

describe('links and paths', () => {
  /** GitHub's anchor for a heading. */
  const slug = (heading: string) =>
    heading
      .replace(/`/g, '')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
  function anchors(file: string): string[] {
    const seen = new Map<string, number>();
    const text = read(file).replace(/```[\s\S]*?```/g, '');
    return [...text.matchAll(/^#{1,6} (.*)$/gm)].map((m) => {
      const s = slug(m[1]!);
      const n = seen.get(s);
      seen.set(s, (n ?? -1) + 1);
      return n === undefined ? s : `${s}-${n + 1}`;
    });
  }

  it.each(DOCS)('%s: every link resolves inside the repository', (file) => {
    const bad: string[] = [];
    for (const [, link] of read(file).matchAll(/\]\(([^)\s]+)\)/g)) {
      // The one absolute address: the repository itself (the README is also read on npm).
      if (/^[a-z]+:/.test(link!)) {
        if (!link!.startsWith('https://github.com/rawio/rawio/')) bad.push(`${link} (outside the repository)`);
        continue;
      }
      const [path, anchor] = link!.split('#');
      const target = path ? relative(root, join(root, dirname(file), path)) : file;
      if (!existsSync(join(root, target))) bad.push(`${link} (no such file)`);
      else if (anchor && target.endsWith('.md') && !anchors(target).includes(anchor))
        bad.push(`${link} (no such heading)`);
    }
    expect(bad).toEqual([]);
  });

  it.each(DOCS)('%s: every repository path it names exists', (file) => {
    const paths = [
      ...read(file).matchAll(
        /(?<![\w/.-])((?:src|bench|test|native|scripts|examples|\.ci|\.github)\/[\w./*-]*[\w/*])/g,
      ),
    ].map((m) => m[1]!);
    expect(paths.filter((p) => !/[<*{]/.test(p) && !existsSync(join(root, p)))).toEqual([]);
  });

  it('the file map of docs/ARCHITECTURE.md names every source file, and only files that exist', () => {
    const arch = read('docs/ARCHITECTURE.md');
    const map = arch.slice(arch.indexOf('## File map'), arch.indexOf('\n## ', arch.indexOf('## File map') + 1));
    const named = new Set<string>();
    for (const [, dir, body] of map.matchAll(/\*\*`([\w/]+)\/`\*\*[^\n]*\n\n((?:\|.*\n)+)/g)) {
      for (const row of body!.split('\n').slice(2)) {
        const first = row.split('|')[1] ?? '';
        for (const [, name] of first.matchAll(/`([^`]+)`/g)) named.add(`${dir}/${name}`);
      }
    }
    expect(named.size).toBeGreaterThan(100);
    expect([...named].filter((p) => !existsSync(join(root, p)))).toEqual([]);
    const sources = [...filesUnder('src'), ...filesUnder('bench'), ...filesUnder('scripts')].filter(
      (f) => f !== 'bench/RESULTS.md',
    );
    expect(sources.filter((f) => !named.has(f))).toEqual([]);
    const native = filesUnder('native').map((f) => f.slice('native/'.length));
    expect(native.filter((f) => !arch.includes(`\`${f}\``))).toEqual([]);
  });
});

describe('scripts, environment and defaults', () => {
  it("package-lock.json's root entry is package.json's, so `npm install` in a clone leaves it as it is", () => {
    const pkg = JSON.parse(read('package.json')) as Record<string, unknown> & { scripts: Record<string, string> };
    const lock = (JSON.parse(read('package-lock.json')) as { packages: Record<string, Record<string, unknown>> })
      .packages['']!;
    const fields = ['name', 'version', 'license', 'os', 'cpu', 'engines', 'bin', 'dependencies', 'devDependencies'];
    // (npm writes bin paths without their leading ./)
    const bin = Object.fromEntries(
      Object.entries(pkg.bin as Record<string, string>).map(([k, v]) => [k, v.replace(/^\.\//, '')]),
    );
    for (const f of fields) expect(lock[f], f).toEqual(f === 'bin' ? bin : pkg[f]);
    // npm records an install, preinstall or postinstall script as hasInstallScript.
    const installs = ['preinstall', 'install', 'postinstall'].some((s) => s in pkg.scripts);
    expect(lock.hasInstallScript === true, 'hasInstallScript').toBe(installs);
  });

  it('every package npm installs accepts the Node versions it must (no EBADENGINE on npm install)', () => {
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { version?: string; dev?: boolean; optional?: boolean; engines?: { node?: string } }>;
    };
    // The oldest release of each major line rawio supports ("^20.19.0 || ^22.12.0 || >=24.0.0"):
    // what a user's `npm install rawio` may run on. A clone's `npm install` (the dev tools
    // too) runs on the first line, the one the README's quick start and CI use.
    const oldest = pkg.engines.node.split('||').map((r) => semver.minVersion(r.trim())!.version);
    expect(oldest.length).toBeGreaterThan(1);
    const refused: string[] = [];
    for (const [where, p] of Object.entries(lock.packages)) {
      const range = p.engines?.node;
      // optional: a platform's binary, installed only on that platform (and without a warning)
      if (where === '' || typeof range !== 'string' || p.optional === true) continue;
      for (const v of p.dev === true ? oldest.slice(0, 1) : oldest) {
        if (!semver.satisfies(v, range)) refused.push(`${where}@${p.version} needs node ${range}, not ${v}`);
      }
    }
    expect(refused).toEqual([]);
  });

  it('every `npm run` script the docs name exists in package.json', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: object }).scripts);
    const named = DOCS.flatMap((f) => [...read(f).matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!));
    expect(named.length).toBeGreaterThan(10);
    expect([...new Set(named)].filter((s) => !scripts.includes(s))).toEqual([]);
  });

  it('every scenario a `--only` in the docs names is registered', async () => {
    const { scenarios } = (await import(join(root, 'dist/bench/registry.js'))) as { scenarios: { name: string }[] };
    const named = DOCS.flatMap((f) =>
      [...read(f).matchAll(/--only ([a-z][a-z0-9-]*(?:,[a-z][a-z0-9-]*)*)/g)].flatMap((m) => m[1]!.split(',')),
    );
    const known = scenarios.map((x) => x.name);
    expect(named.filter((n) => !known.includes(n) && !['a', 'b'].includes(n))).toEqual([]);
  });

  it('every RAWIO_ environment variable the code reads is documented', () => {
    const code = [...filesUnder('src'), ...filesUnder('bench'), ...filesUnder('scripts')].filter(
      (f) => f !== 'bench/RESULTS.md',
    );
    // (not ERR_RAWIO_* error codes, nor a C header's include guard)
    const vars = new Set(
      code.flatMap((f) =>
        [...read(f).matchAll(/(?<!ERR_)\bRAWIO_[A-Z_]+/g)].map((m) => m[0]).filter((v) => !v.endsWith('_H')),
      ),
    );
    expect(vars).toContain('RAWIO_ADDON');
    const docs = DOCS.map(read).join('\n');
    expect([...vars].filter((v) => !docs.includes(v))).toEqual([]);
  });

  it('every RAWIO_ environment variable the docs name is read by the code, the tests or the CI', () => {
    const readers = [
      ...['src', 'bench', 'scripts', 'test', '.ci'].flatMap(filesUnder),
      ...readdirSync(root).filter((f) => /^vitest\..*\.ts$/.test(f)),
    ].filter((f) => f !== 'test/docs.test.ts' && f !== 'bench/RESULTS.md');
    const code = readers.map(read).join('\n');
    const named = new Set(
      DOCS.flatMap((f) => [...read(f).matchAll(/(?<!ERR_)\bRAWIO_[A-Z_]*[A-Z]/g)].map((m) => m[0])),
    );
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((v) => !names(code, v))).toEqual([]);
  });

  it.each(['README.md', 'docs/ARCHITECTURE.md'])(
    "%s: the connection limits table states resolveServeOptions' defaults",
    async (file) => {
      const { resolveServeOptions } = (await import(join(root, 'dist/src/index.js'))) as {
        resolveServeOptions(o: object): Record<string, number>;
      };
      const defaults = resolveServeOptions({ model: 'single', protocol: 'echo' });
      const units: Record<string, number> = { '': 1, KiB: 1024, MiB: 1 << 20, s: 1000 };
      // | what | 64 MiB | at the limit | `maxQueue` / `--max-queue` |   ("none": no limit)
      const rows = [
        ...read(file).matchAll(/^\| [^|]+ \| ([\d ]+|none) ?(KiB|MiB|s)? \|.*\| `(\w+)`(?: \/ `--[\w-]+`)? \|$/gm),
      ];
      const stated = Object.fromEntries(
        rows.map((m) => [m[3]!, m[1] === 'none' ? Infinity : Number(m[1]!.replace(/ /g, '')) * units[m[2] ?? '']!]),
      );
      // (maxHeader and maxRequest are the codecs' own defaults, which serve() leaves to them)
      const keys = ['maxInFlight', 'maxOutput', 'maxFiles', 'maxQueue', 'headerTimeout', 'idleTimeout'];
      expect(Object.keys(stated)).toEqual(expect.arrayContaining(keys));
      for (const key of Object.keys(stated)) if (key in defaults) expect(stated[key], key).toBe(defaults[key]);
    },
  );
});
