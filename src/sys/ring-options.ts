/**
 * Which ring setup options this kernel offers, each learned by trying it on a throwaway
 * ring (or from the IORING_FEAT_* bits where the kernel announces it), for `probe()` and the
 * tests that must skip where one is missing: a registered ring fd (IORING_REGISTER_RING_FDS,
 * 5.18), IORING_SETUP_SUBMIT_ALL (5.18), IORING_SETUP_CQSIZE (5.5), recv bundles
 * (IORING_RECVSEND_BUNDLE, 6.10) and incremental provided buffers (IOU_PBUF_RING_INC, 6.12).
 */
import { errnoName } from './errors.js';
import { native } from './native.js';
import { Ring } from './ring.js';
import * as u from './uring.js';

/** One option: whether this kernel has it, and how that was found out (or why not). */
export interface RingOptionSupport {
  /** Whether this kernel took the option. */
  supported: boolean;
  /** How that was found out, or the kernel's reason for refusing it. */
  detail: string;
}

/** The ring setup options `probe()` reports as supported or not (`ioUring.options`). */
export const ringOptionNames = ['registerRingFd', 'submitAll', 'cqSize', 'recvBundle', 'incrementalBuffers'] as const;
/** One of {@link ringOptionNames}. */
export type RingOptionName = (typeof ringOptionNames)[number];

function tryRing(make: () => Ring, ok: (r: Ring) => boolean, what: string): RingOptionSupport {
  try {
    const r = make();
    const yes = ok(r);
    r.close();
    return { supported: yes, detail: yes ? what : `${what}: refused` };
  } catch (e) {
    return { supported: false, detail: `${what}: ${(e as { code?: string }).code ?? String(e)}` };
  }
}

/** IOU_PBUF_RING_INC: register a one-buffer ring with the flag on a throwaway ring. */
function incrementalBuffers(): RingOptionSupport {
  const what = 'IORING_REGISTER_PBUF_RING with IOU_PBUF_RING_INC (6.12)';
  const raw = new native.Ring();
  let r = raw.setup(2, 0, 0);
  if (r === 0) r = raw.registerBufRing(0, new Uint8Array(64), 1, 64, 2);
  raw.close();
  return { supported: r === 0, detail: r === 0 ? what : `${what}: ${errnoName(r) ?? r}` };
}

let cached: Record<RingOptionName, RingOptionSupport> | undefined;

/** Each option's support, tried once per thread; all unsupported where io_uring is refused. */
export function ringOptionSupport(): Record<RingOptionName, RingOptionSupport> {
  if (cached) return cached;
  const p = u.ringProbe();
  if (!p.supported) {
    const no = { supported: false, detail: `io_uring refused (${p.code ?? 'unknown'})` };
    return (cached = Object.fromEntries(ringOptionNames.map((n) => [n, no])) as Record<
      RingOptionName,
      RingOptionSupport
    >);
  }
  const bundle = p.features.includes('RECVSEND_BUNDLE');
  cached = {
    registerRingFd: tryRing(
      () => new Ring({ entries: 2, attach: false, registerRingFd: true }),
      () => true,
      'IORING_REGISTER_RING_FDS (5.18)',
    ),
    submitAll: tryRing(
      () => new Ring({ entries: 2, attach: false }),
      (r) => (r.setupFlags & u.IORING_SETUP_SUBMIT_ALL) !== 0,
      'IORING_SETUP_SUBMIT_ALL (5.18)',
    ),
    cqSize: tryRing(
      () => new Ring({ entries: 2, attach: false, cqEntries: 64 }),
      (r) => r.cqEntries === 64,
      'IORING_SETUP_CQSIZE (5.5)',
    ),
    recvBundle: {
      supported: bundle,
      detail: `IORING_FEAT_RECVSEND_BUNDLE (6.10)${bundle ? '' : ': not announced'}`,
    },
    incrementalBuffers: incrementalBuffers(),
  };
  return cached;
}
