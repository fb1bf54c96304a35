/**
 * Network-device features through the ethtool ioctl (SIOCETHTOOL; see ethtool(8)): above
 * all scatter-gather (ETHTOOL_GSG), without which sendfile(2) cannot hand page-cache pages
 * to the device and has to copy after all.
 */
import { check } from './errors.js';
import { native } from './native.js';
import * as v from './validate.js';

/**
 * A feature {@link netdevFeature} can ask about: scatter-gather, TCP / generic segmentation
 * offload, generic receive offload, transmit / receive checksum offload.
 */
export type NetdevFeature = 'sg' | 'tso' | 'gso' | 'gro' | 'tx-csum' | 'rx-csum';
const FEATURES: readonly NetdevFeature[] = ['sg', 'tso', 'gso', 'gro', 'tx-csum', 'rx-csum'];

/**
 * Whether the device `ifname` has `feature` on. Throws an ErrnoError when the device does
 * not exist (ENODEV) or does not answer ethtool (EOPNOTSUPP), a RangeError for a name of
 * more than 15 bytes (the kernel's IFNAMSIZ, its NUL included).
 * @example
 * sys.netdevFeature('lo', 'sg'); // true on most kernels
 */
export function netdevFeature(ifname: string, feature: NetdevFeature): boolean {
  v.cstr('ifname', ifname);
  // The kernel's limit is in bytes (IFNAMSIZ less its NUL), not UTF-16 units.
  const bytes = Buffer.byteLength(ifname);
  if (bytes === 0 || bytes > 15) throw v.rangeError('ifname', '1 to 15 bytes of UTF-8', ifname);
  v.str('feature', feature);
  if (!FEATURES.includes(feature)) throw v.rangeError('feature', `one of ${FEATURES.join(', ')}`, feature);
  return check(native.ethtoolGet(ifname, feature), 'ioctl') !== 0;
}
