// A line-based protocol module: each line is a command, each reply a line.
//   PING -> PONG    ECHO <text> -> <text>    INCR -> the server-wide count    QUIT -> bye, close
// create(options) runs in every thread and process of the server. The first instance
// creates a Keyspace for the counter and publishes its name in `options`; the others attach,
// so every model — threads or processes — counts in one place.
import { Keyspace } from 'rawio';

const line = (s) => Buffer.from(`${s}\r\n`);

export function create(options = {}) {
  const ks = options.keyspace ? Keyspace.attach(options.keyspace) : Keyspace.create(undefined, { size: 1 << 16 });
  const digits = new Uint8Array(24);
  return {
    options: { ...options, keyspace: ks.name },
    // The codec frames lines out of the byte stream; it keeps the unfinished tail.
    createCodec() {
      let rest = Buffer.alloc(0);
      return {
        push(chunk) {
          const buf = Buffer.concat([rest, chunk]); // a copy: the chunk is the server's buffer
          const frames = [];
          let start = 0;
          for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
            frames.push(buf.subarray(start, nl > start && buf[nl - 1] === 13 ? nl - 1 : nl));
            start = nl + 1;
          }
          rest = buf.subarray(start);
          if (rest.length > 4096) throw new Error('line too long');
          return { frames };
        },
      };
    },
    handle(frame) {
      const text = Buffer.from(frame).toString();
      const [cmd, ...args] = text.split(' ');
      switch (cmd.toUpperCase()) {
        case 'PING':
          return { data: line('PONG') };
        case 'ECHO':
          return { data: line(args.join(' ')) };
        case 'INCR':
          return { data: line(Buffer.from(digits.subarray(0, ks.incr(Buffer.from('count'), 1, digits))).toString()) };
        case 'QUIT':
          return { data: line('bye'), close: true };
        default:
          throw new Error(`unknown command '${cmd}'`);
      }
    },
    // What a failing request gets (the connection stays open), as Redis answers -ERR.
    errorReply(err) {
      return { data: line(`-ERR ${err.message}`) };
    },
    onError() {}, // counted in server.stats().errors; a real server would log it
    close() {
      ks.close();
    },
  };
}
