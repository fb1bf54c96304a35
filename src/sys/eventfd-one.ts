/**
 * The 8 bytes that add 1 to an eventfd's counter (eventfd(2): a write is a native-endian
 * u64), for rawio's own wake-ups: a channel's consumer, a proactor thread's stop signal, a
 * ring's eventfd made readable once.
 */
export const EVENTFD_ONE: Uint8Array = new Uint8Array(new BigUint64Array([1n]).buffer);

/**
 * The 8 bytes that add 2 to an eventfd's counter: a proactor thread's drain signal (a graceful
 * close). Its stop signal adds 1, so an odd count read means stop, whatever came before it.
 */
export const EVENTFD_TWO: Uint8Array = new Uint8Array(new BigUint64Array([2n]).buffer);
