import { describe, expect, it } from 'vitest';
import { multiProactorUnsupported } from '../../dist/src/models/multi-proactor.js';
import { serve } from '../helpers/rawio.js';
import { defineModelSuite } from './suite.js';

const why = multiProactorUnsupported();

if (why === undefined) {
  defineModelSuite('multi-proactor');
} else {
  describe('multi-proactor', () => {
    it('rejects with the reason where the kernel lacks MSG_RING fd passing', async () => {
      await expect(serve({ model: 'multi-proactor', protocol: 'echo', port: 0 })).rejects.toThrow(why);
    });
    it.skip(`model suites: ${why}`, () => {});
  });
}
