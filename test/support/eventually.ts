/**
 * Wait for a condition instead of sleeping a guessed time: a loaded machine
 * makes the wait longer, never the test wrong. Throws when `timeoutMs` passes.
 */

export async function until(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const { timeoutMs = 10_000, intervalMs = 10, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
