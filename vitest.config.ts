import { defineConfig } from 'vitest/config';

/** The real-VM tests (QEMU guests, network namespaces) run alone, after everything else: they
 * share the machine's `tmr-` namespaces, and their RTOs are real time, measured on an idle machine. */
const REAL_VMS = ['test/substrate/qemu-smoke.test.ts', 'test/substrate/qemu-lab.test.ts', 'test/substrate/qemu-clock.test.ts', 'test/substrate/qemu-ransomware.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: REAL_VMS, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'real-vms', include: REAL_VMS, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
