/**
 * Who may do what. Every route names one permission; a role is a set of permissions. A vendor
 * role (`vendor:NAME`) also carries a scope: it sees and acts only on the services whose vendor
 * is NAME, which the routes check on the resource itself.
 */

export const PERMISSIONS = [
  'status.read',
  'metrics.read',
  'hosts.read',
  'blueprint.read',
  'plan.read',
  'incidents.read',
  'drills.read',
  'snapshots.read',
  'events.read',
  'restores.read',
  'windows.read',
  'audit.read',
  'audit.verify',
  'audit.export',
  'blueprint.apply',
  'drills.start',
  'snapshots.restore',
  'restores.request',
  'restores.decide',
  'approvals.read',
  'disruptions.approve',
  'vms.quarantine',
  'vms.restart',
  'hosts.maintenance',
  'windows.open',
  'users.manage',
  'tokens.own',
] as const;

export type Permission = (typeof PERMISSIONS)[number];
export type FixedRole = 'admin' | 'operator' | 'auditor' | 'viewer';
export type Role = FixedRole | `vendor:${string}`;

const READS: readonly Permission[] = [
  'status.read',
  'metrics.read',
  'hosts.read',
  'blueprint.read',
  'plan.read',
  'incidents.read',
  'drills.read',
  'snapshots.read',
  'events.read',
  'restores.read',
  'windows.read',
  'audit.read',
];

const GRANTS: Record<FixedRole | 'vendor', ReadonlySet<Permission>> = {
  admin: new Set(PERMISSIONS),
  operator: new Set<Permission>([
    ...READS,
    'audit.verify',
    'blueprint.apply',
    'drills.start',
    'snapshots.restore',
    'restores.request',
    'restores.decide',
    'approvals.read',
    'disruptions.approve',
    'vms.quarantine',
    'vms.restart',
    'hosts.maintenance',
    'windows.open',
    'tokens.own',
  ]),
  auditor: new Set<Permission>([...READS, 'approvals.read', 'audit.verify', 'audit.export', 'tokens.own']),
  viewer: new Set<Permission>(['status.read', 'hosts.read', 'tokens.own']),
  // Scoped to the vendor's own services by the routes.
  vendor: new Set<Permission>(['status.read', 'snapshots.read', 'events.read', 'restores.read', 'approvals.read', 'windows.read', 'restores.request', 'vms.restart', 'windows.open', 'tokens.own']),
};

const VENDOR_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function isRole(value: string): value is Role {
  if (value === 'admin' || value === 'operator' || value === 'auditor' || value === 'viewer') return true;
  return value.startsWith('vendor:') && VENDOR_NAME.test(value.slice('vendor:'.length));
}

export function vendorOf(role: Role): string | null {
  return role.startsWith('vendor:') ? role.slice('vendor:'.length) : null;
}

export function allows(role: Role, permission: Permission): boolean {
  const key = vendorOf(role) === null ? (role as FixedRole) : 'vendor';
  return GRANTS[key].has(permission);
}

export const ROLE_DESCRIPTIONS: Record<FixedRole | 'vendor:NAME', string> = {
  admin: 'everything, including accounts and the audit export',
  operator: 'reads everything and runs the hospital: blueprint, drills, restores, quarantine, maintenance; no accounts, no audit export',
  auditor: 'reads everything, verifies and exports the audit log, changes nothing',
  viewer: 'service and host status only (for clinical staff)',
  'vendor:NAME': "its own systems only: their status, snapshots and events; restart, maintenance windows, snapshot restore with an operator's approval",
};
