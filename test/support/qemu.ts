/**
 * Whether the real-VM tests can run here, and why not: they need TOMARANAI_QEMU=1, the guest image
 * (`npm run vm:image`), root (network namespaces, taps, nftables) and /dev/net/tun. The reason is
 * printed once per file, so a skipped run says what to do.
 */
import { existsSync } from 'node:fs';
import { loadGuestImage, type GuestImage } from '../../src/substrate/qemu/vm.ts';

export interface RealVmGate {
  readonly image: GuestImage | null;
  /** Why the file's tests are skipped, or null when they run. */
  readonly reason: string | null;
}

export async function realVmGate(file: string, enable: string, needs = 'network namespaces, taps, nftables'): Promise<RealVmGate> {
  const enabled = process.env.TOMARANAI_QEMU === '1';
  const image = enabled ? await loadGuestImage() : null;
  const reason = !enabled
    ? `set TOMARANAI_QEMU=1 to ${enable}`
    : image === null
      ? 'no guest image: run `npm run vm:image` first'
      : process.getuid?.() !== 0
        ? `needs root (${needs})`
        : !existsSync('/dev/net/tun')
          ? 'no /dev/net/tun'
          : null;
  if (reason !== null) console.warn(`${file}: skipped: ${reason}`);
  return { image, reason };
}
