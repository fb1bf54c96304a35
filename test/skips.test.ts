/**
 * A test that cannot run on a machine skips and says why, in what the reporter shows. Every
 * test file is held to it here: a `skipIf(reason)` titles its test or suite with
 * `titled(title, reason)` (test/helpers/skips.ts), which adds "(skipped: reason)" exactly when
 * it skips; a skip decided in the body is `ctx.skip(reason)`. An unconditional `it.skip`,
 * `describe.skip` or `.todo`, a `runIf` (a skipIf turned around, with no place for the reason)
 * and a bare `ctx.skip()` say nothing, so there are none.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { titled } from './helpers/skips.js';

const root = fileURLToPath(new URL('.', import.meta.url));
const self = fileURLToPath(import.meta.url);

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFiles(p);
    return e.name.endsWith('.ts') && p !== self ? [p] : [];
  });
}

/** The index of the `)` closing the `(` at `open`, past strings and template literals. */
function closing(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') {
      if (--depth === 0) return i;
    } else if (ch === "'" || ch === '"') {
      while (++i < src.length && src[i] !== ch) if (src[i] === '\\') i++;
    } else if (ch === '`') {
      while (++i < src.length && src[i] !== '`') {
        if (src[i] === '\\') i++;
        else if (src[i] === '$' && src[i + 1] === '{') i = closing(src, i + 1);
      }
    }
  }
  return -1;
}

/** The top-level, comma-separated arguments of the call whose `(` is at `open`. */
function args(src: string, open: number): string[] {
  const end = closing(src, open);
  const out: string[] = [];
  let from = open + 1;
  for (let i = from; i < end; i++) {
    const ch = src[i]!;
    if ('([{\'"`'.includes(ch)) i = ch === '(' || ch === '[' || ch === '{' ? closing(src, i) : quoted(src, i);
    else if (ch === ',') {
      out.push(src.slice(from, i).trim());
      from = i + 1;
    }
  }
  const last = src.slice(from, end).trim();
  if (last) out.push(last);
  return out;
}

/** The index of the quote closing the string or template literal opened at `at`. */
function quoted(src: string, at: number): number {
  const q = src[at]!;
  let i = at;
  while (++i < src.length && src[i] !== q) {
    if (src[i] === '\\') i++;
    else if (q === '`' && src[i] === '$' && src[i + 1] === '{') i = closing(src, i + 1);
  }
  return i;
}

const squash = (s: string) => s.replace(/\s+/g, '');

/** What in `src` breaks the rule, one line each. */
function unexplainedSkips(src: string): string[] {
  const bad: string[] = [];
  const line = (at: number) => src.slice(0, at).split('\n').length;
  for (const m of src.matchAll(/\bskipIf\(/g)) {
    const open = m.index + m[0].length - 1;
    const cond = src.slice(open + 1, closing(src, open));
    // past `.each(table)` / `.for(table)` to the call that takes the title
    let at = closing(src, open) + 1;
    const chained = /^\s*\.(each|for)\(/.exec(src.slice(at));
    if (chained) at = closing(src, at + chained[0].length - 1) + 1;
    const call = /^\s*\(\s*/.exec(src.slice(at));
    const title = call ? src.slice(at + call[0].length) : '';
    const t = title.startsWith('titled(') ? args(title, 'titled'.length) : [];
    if (t.length !== 2 || squash(t[1]!) !== squash(cond))
      bad.push(`line ${line(m.index)}: skipIf(${cond}) without titled(title, ${cond}) as its title`);
  }
  for (const m of src.matchAll(/\b(?:it|test|describe|suite)\.(?:skip|todo)\b|\.(?:todo|runIf)\(|\bctx\.skip\(\s*\)/g))
    bad.push(`line ${line(m.index)}: ${m[0]} says no reason`);
  return bad;
}

describe('skipped tests say why', () => {
  it('titled() adds the reason exactly when there is one', () => {
    expect(titled('reads', undefined)).toBe('reads');
    expect(titled('reads', false)).toBe('reads');
    expect(titled('reads', 'io_uring is not available here')).toBe('reads (skipped: io_uring is not available here)');
  });

  it('the check finds a bare skip and accepts a titled one', () => {
    expect(unexplainedSkips("it.skipIf(!ok)('reads', () => {});")).toHaveLength(1);
    expect(unexplainedSkips("it.skipIf(why.ring)(titled('reads (x)', why.cc), () => {});")).toHaveLength(1);
    expect(unexplainedSkips("describe.skip('x', () => {}); it.todo('y'); ctx.skip(); it.runIf(ok)('z')")).toHaveLength(
      4,
    );

    expect(unexplainedSkips("it.skipIf(why.ring)(titled('reads (x)', why.ring), () => {});")).toEqual([]);
    expect(unexplainedSkips('it.skipIf(a && b).each(T)(\n  titled(`%s ${f(1)}`, a && b),\n);')).toEqual([]);
    expect(unexplainedSkips("it('x', (ctx) => ctx.skip('no nginx'));")).toEqual([]);
  });

  it('every test file', () => {
    const bad = tsFiles(root).flatMap((f) =>
      unexplainedSkips(readFileSync(f, 'utf8')).map((b) => `${relative(root, f)} ${b}`),
    );
    expect(bad).toEqual([]);
  });
});
