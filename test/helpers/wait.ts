/**
 * Polls `check` every 20 ms until it holds or `ms` pass; resolves with its last answer. The
 * deadline is generous on purpose: these machines are shared, and a wait that passes
 * returns as soon as it holds (nothing here measures speed).
 */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 25_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}
