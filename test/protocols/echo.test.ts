import { describe, expect, it } from 'vitest';
import { createProtocol } from '../helpers/rawio.js';
import { feed, text } from './feed.js';

describe('echo protocol', () => {
  it('frames each pushed chunk and answers it byte for byte', () => {
    const p = createProtocol('echo');
    const c = p.createCodec();
    const { frames } = feed(c, Buffer.from('hello, world'), [5, 5, 7]);
    expect(frames.map(text)).toEqual(['hello', ', ', 'world']);
    expect(frames.map((f) => text(p.handle(f).data)).join('')).toBe('hello, world');
    expect(p.handle(frames[0]).close).toBeFalsy();
    p.close();
  });

  it('does not keep the chunk it was given, and ignores empty pushes', () => {
    const p = createProtocol('echo');
    const c = p.createCodec();
    const buf = Buffer.from('abc');
    const r = c.push(buf);
    buf.fill(0);
    expect(text(p.handle(r.frames[0]).data)).toBe('abc');
    expect(c.push(new Uint8Array(0)).frames).toEqual([]);
    expect(p.options).toEqual({});
  });
});
