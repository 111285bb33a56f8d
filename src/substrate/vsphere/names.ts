/**
 * A vSphere name as a blueprint name: lower-case letters, digits and dashes (`DC0_C0_H0` →
 * `dc0-c0-h0`). Import, plan and the substrate use this one function, so they agree on which VM or
 * host is which.
 */
const BLUEPRINT_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** `DC0_C0_H0` → `dc0-c0-h0`, `ESX01.hospital.local` → `esx01-hospital-local`; never empty. */
export function blueprintName(vsphereName: string, fallback = 'unnamed'): string {
  const name = vsphereName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return BLUEPRINT_NAME.test(name) ? name : fallback;
}
