/**
 * The named writer and reader of each message kind the models' threads exchange: what a
 * writer puts into a Channel, the reader gets back, field by field.
 */
import { describe, expect, it } from 'vitest';
import { Channel, type Message } from '../../dist/src/models/channel.js';
import * as M from '../../dist/src/models/messages.js';

function roundTrip(write: (ch: Channel) => boolean): Message {
  const ch = new Channel(Channel.create(4096));
  expect(write(ch)).toBe(true);
  const m = {} as Message;
  expect(ch.pop(m)).toBe(true);
  return m;
}

describe('channel messages', () => {
  it('NEW_FD carries the fd', () => {
    const m = roundTrip((ch) => M.writeNewFd(ch, 1234));
    expect(m.tag).toBe(M.MSG.NEW_FD);
    expect(M.readNewFd(m)).toBe(1234);
  });

  it('STOP carries nothing', () => {
    expect(roundTrip((ch) => M.writeStop(ch)).tag).toBe(M.MSG.STOP);
  });

  it('REQUEST carries reactor, session, sequence and the frame', () => {
    const frame = Uint8Array.from([1, 2, 3, 250]);
    const m = roundTrip((ch) => M.writeRequest(ch, { reactor: 3, session: 70_000, seq: 2 ** 40, frame }));
    expect(m.tag).toBe(M.MSG.REQUEST);
    const r = M.readRequest(m);
    expect({ ...r, frame: [...r.frame] }).toEqual({ reactor: 3, session: 70_000, seq: 2 ** 40, frame: [1, 2, 3, 250] });
  });

  it('REPLY carries partial and close flags, and a file region or none', () => {
    const data = Uint8Array.from([9, 8, 7]);
    const cases: M.ReplyMessage[] = [
      { session: 1, seq: 0, data, partial: true, close: false },
      { session: 2, seq: 5, data, partial: false, close: true },
      { session: 3, seq: 6, data, partial: false, close: false, file: { fd: 0, offset: 2 ** 33, length: 4096 } },
      { session: 4, seq: 7, data, partial: false, close: true, body: true },
    ];
    for (const c of cases) {
      const m = roundTrip((ch) => M.writeReply(ch, c));
      expect(m.tag).toBe(M.MSG.REPLY);
      const r = M.readReply(m);
      expect({ ...r, data: [...r.data] }).toEqual({ ...c, data: [9, 8, 7] });
    }
  });

  it('BODY carries its pool thread, credit slot, the slot generation and whether it is the last piece', () => {
    const data = Uint8Array.from([1, 2]);
    for (const last of [false, 'end', 'error'] as const) {
      const c: M.BodyMessage = { session: 9, seq: 2 ** 35, pool: 3, slot: 17, gen: 2 ** 31 - 1, data, last };
      const m = roundTrip((ch) => M.writeBody(ch, c));
      expect(m.tag).toBe(M.MSG.BODY);
      const b = M.readBody(m);
      expect({ ...b, data: [...b.data] }).toEqual({ ...c, data: [1, 2] });
    }
  });
});
