/**
 * The lab: a blueprint small enough for one machine, made of real parts. Every host is a network
 * namespace with a host agent; every VM is a QEMU guest; every datastore is a directory that all
 * hosts see (namespaces share the filesystem, as hosts share a SAN or NFS export). This module is
 * the layout of that directory and the manifest that `tomaranai lab up` writes: where each file
 * lives, which address each host and VM has. Pure apart from the manifest's I/O.
 *
 *   LAB/lab.json                         the manifest (hosts, VMs, addresses, timings)
 *   LAB/secret/agent-token               the agents' bearer token (0600; never logged)
 *   LAB/secret/bmc/<host>.password       each host's BMC password (0600), for its fence agent
 *   LAB/secret/tls/                      mutual TLS: ca.pem, control-plane.pem/.key, <host>.pem/.key
 *   LAB/fencing.json                     power fencing: fence_ipmilan against each host's BMC
 *   LAB/control/                         the control plane's own state (epoch, generations)
 *   LAB/datastore/<ds>/disks/<vm>.qcow2  each VM's disk (an overlay on the guest image)
 *   LAB/datastore/<ds>/heartbeats/<host>.json   the datastore heartbeat channel
 *   LAB/datastore/<ds>/leases/<vm>.json  who may run the VM's writable copy, until when
 *   LAB/datastore/<ds>/fence/<host>.json a storage fence of a host, and the agent's .ack
 *   LAB/datastore/<ds>/snapshots/<vm>/   immutable point-in-time copies of the disk
 *   LAB/datastore/<ds>/restores/<id>.qcow2  a restored copy's disk (an overlay on a snapshot)
 *   LAB/datastore/<ds>/evidence/         infected disks a restored copy replaced
 *   LAB/hosts/<host>/run/                QMP sockets, pid files, consoles, instance records
 *   LAB/hosts/<host>/agent.log           the agent's log (JSON lines)
 *   LAB/hosts/<host>/power               "on" or "off", as the power controller or the BMC left it
 *   LAB/hosts/<host>/bmc/                its IPMI BMC (ipmi_sim): lan.conf, chassis program, log
 *   LAB/hosts/<host>/faults/<fault>      a fault injected into the host (storage-path-down)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Blueprint } from '../../model/index.ts';
import { namespaceName } from './netns.ts';
import { macForVm, VM_NAME_PATTERN } from './vm.ts';
import { TomaranaiError } from '../../errors/index.ts';

export const DEFAULT_LAB_DIRECTORY = resolve(dirname(new URL(import.meta.url).pathname), '../../../.lab/lab');
export const AGENT_PORT = 7700;
export const LAB_NETWORK = { rootAddress: '10.77.0.1', clientAddress: '10.77.2.1', prefix: 16, hostBase: [10, 77, 0, 11], vmBase: [10, 77, 1, 10] } as const;
/** The most VMs a lab may hold: 254 addresses in 10.77.1.0/24, and this machine's memory long before. */
export const LAB_VM_LIMIT = 32;
export const LAB_HOST_LIMIT = 16;

export interface LabHost {
  readonly name: string;
  readonly namespace: string;
  /** The host's address (its agent listens here), without prefix. */
  readonly address: string;
}

export interface LabVm {
  readonly name: string;
  readonly service: string;
  readonly tier: string;
  readonly address: string;
  readonly mac: string;
  readonly datastore: string;
  readonly memoryMiB: number;
}

export interface LabTimings {
  /** How often an agent writes its datastore heartbeat and renews its leases. */
  readonly heartbeatMs: number;
  /** How long a lease holds after its last renewal. */
  readonly leaseMs: number;
  /** Milliseconds between two durable writes of each guest's workload. */
  readonly writeIntervalMs: number;
}

export const DEFAULT_LAB_TIMINGS: LabTimings = Object.freeze({ heartbeatMs: 250, leaseMs: 3_000, writeIntervalMs: 100 });

export interface LabManifest {
  readonly version: 1;
  readonly blueprintFile: string;
  readonly blueprintName: string;
  readonly imageDirectory: string;
  readonly accelerator: 'tcg' | 'kvm';
  readonly agentPort: number;
  readonly rootAddress: string;
  /** A clinician terminal's address on the root namespace's bridge (the blueprint's client network). */
  readonly clientAddress: string;
  readonly prefix: number;
  readonly hosts: readonly LabHost[];
  readonly vms: readonly LabVm[];
  readonly datastores: readonly string[];
  readonly timings: LabTimings;
  /** One guest's launch-to-health time measured at `lab up` (ms; null if unknown): the drills derive their timeouts from it. */
  readonly bootMs?: number | null;
  readonly createdAt: string;
  /** Where the agents' mutual-TLS material lives (agent-tls.ts); absent: plain HTTP with the token only. */
  readonly tlsDirectory?: string;
}

function address(base: readonly number[], offset: number): string {
  const last = base[3]! + offset;
  return `${base[0]}.${base[1]}.${base[2]}.${last}`;
}

/** The lab for a blueprint: addresses and names; refuses a blueprint that does not fit the machine. */
export function labPlan(blueprint: Blueprint, options: { blueprintFile: string; imageDirectory: string; accelerator: 'tcg' | 'kvm'; timings?: Partial<LabTimings>; bootMs?: number | null }): LabManifest {
  if (blueprint.hosts.length > LAB_HOST_LIMIT || blueprint.vms.length > LAB_VM_LIMIT) {
    throw new TomaranaiError(
      'TMR_LAB_TOO_LARGE',
      `blueprint ${blueprint.name} has ${blueprint.hosts.length} hosts and ${blueprint.vms.length} VMs; a lab on one machine takes at most ${LAB_HOST_LIMIT} hosts and ${LAB_VM_LIMIT} VMs`,
      'use blueprints/lab.yaml, or a blueprint of the same shape; the twin runs the large ones (`tomaranai drill FILE`)',
    );
  }
  for (const host of blueprint.hosts) namespaceName(host.name);
  const vms: LabVm[] = blueprint.vms.map((vm, index) => {
    if (!VM_NAME_PATTERN.test(vm.name)) {
      throw new TomaranaiError('TMR_LAB_NAME', `VM name ${JSON.stringify(vm.name)} cannot name a QEMU guest`, `use lower-case letters, digits and dashes (${VM_NAME_PATTERN})`);
    }
    const service = blueprint.services.find((candidate) => candidate.name === vm.service)!;
    return {
      name: vm.name,
      service: vm.service,
      tier: service.tier,
      address: address(LAB_NETWORK.vmBase, index),
      mac: macForVm(vm.name),
      datastore: service.datastore,
      // The guest is the same tiny busybox VM whatever the blueprint says: it needs 256 MiB under TCG.
      memoryMiB: 256,
    };
  });
  return {
    version: 1,
    blueprintFile: resolve(options.blueprintFile),
    blueprintName: blueprint.name,
    imageDirectory: resolve(options.imageDirectory),
    accelerator: options.accelerator,
    agentPort: AGENT_PORT,
    rootAddress: LAB_NETWORK.rootAddress,
    clientAddress: LAB_NETWORK.clientAddress,
    prefix: LAB_NETWORK.prefix,
    hosts: blueprint.hosts.map((host, index) => ({ name: host.name, namespace: namespaceName(host.name), address: address(LAB_NETWORK.hostBase, index) })),
    vms,
    datastores: blueprint.datastores.map((store) => store.name),
    timings: { ...DEFAULT_LAB_TIMINGS, ...options.timings },
    bootMs: options.bootMs ?? null,
    createdAt: new Date().toISOString(),
  };
}

/** Where everything of a lab lives. */
export class LabLayout {
  readonly root: string;
  constructor(root: string = DEFAULT_LAB_DIRECTORY) {
    this.root = resolve(root);
  }
  get manifestFile(): string {
    return join(this.root, 'lab.json');
  }
  get tokenFile(): string {
    return join(this.root, 'secret', 'agent-token');
  }
  /** The lab's power-fencing file (fence agents per host; fence-config.ts), written by `lab up`. */
  get fencingFile(): string {
    return join(this.root, 'fencing.json');
  }
  /** The CA, the control plane's client pair and each host's server pair (agent-tls.ts). */
  get tlsDirectory(): string {
    return join(this.root, 'secret', 'tls');
  }
  get controlDirectory(): string {
    return join(this.root, 'control');
  }
  datastore(ds: string): string {
    return join(this.root, 'datastore', ds);
  }
  disk(ds: string, vm: string): string {
    return join(this.datastore(ds), 'disks', `${vm}.qcow2`);
  }
  heartbeat(ds: string, host: string): string {
    return join(this.datastore(ds), 'heartbeats', `${host}.json`);
  }
  lease(ds: string, vm: string): string {
    return join(this.datastore(ds), 'leases', `${vm}.json`);
  }
  /** A storage fence's revocation of one lease: written by the control plane only, never by an agent. */
  revocation(ds: string, vm: string): string {
    return join(this.datastore(ds), 'leases', `${vm}.revoked.json`);
  }
  fence(ds: string, host: string): string {
    return join(this.datastore(ds), 'fence', `${host}.json`);
  }
  fenceAck(ds: string, host: string): string {
    return join(this.datastore(ds), 'fence', `${host}.ack.json`);
  }
  /** A restored copy's disk: an overlay on the snapshot it was restored from. */
  restoreDisk(ds: string, restoreId: string): string {
    return join(this.datastore(ds), 'restores', `${restoreId}.qcow2`);
  }
  /** An infected disk, kept as evidence after a clean copy replaced it. */
  evidenceDisk(ds: string, name: string): string {
    return join(this.datastore(ds), 'evidence', `${name}.qcow2`);
  }
  snapshots(ds: string, vm: string): string {
    return join(this.datastore(ds), 'snapshots', vm);
  }
  host(host: string): string {
    return join(this.root, 'hosts', host);
  }
  run(host: string): string {
    return join(this.host(host), 'run');
  }
  agentLog(host: string): string {
    return join(this.host(host), 'agent.log');
  }
  power(host: string): string {
    return join(this.host(host), 'power');
  }
  fault(host: string, fault: 'storage-path-down'): string {
    return join(this.host(host), 'faults', fault);
  }
}

/** Writes a file so that a reader sees the old content or the new, never half of it. */
export async function writeAtomic(file: string, content: string, mode?: number): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, content, mode === undefined ? {} : { mode });
  await rename(temporary, file);
}

export async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

export async function readManifest(layout: LabLayout): Promise<LabManifest | null> {
  const manifest = await readJson<LabManifest>(layout.manifestFile);
  return manifest !== null && manifest.version === 1 ? manifest : null;
}

export async function readToken(layout: LabLayout): Promise<string> {
  return (await readFile(layout.tokenFile, 'utf8')).trim();
}

/** A lease on the datastore: which host may run the VM's writable copy, until when. */
export interface Lease {
  readonly vm: string;
  readonly host: string;
  readonly instanceId: string;
  readonly epoch: number;
  readonly generation: number;
  /**
   * The holder's wall-clock milliseconds: informative only. A reader judges a lease by when it saw
   * it change on its own monotonic clock (change-witness.ts), never by these numbers.
   */
  readonly renewedAtMs: number;
  readonly expiresAtMs: number;
}

/**
 * A storage fence's revocation of the lease one copy holds. It is a file of its own, so that an
 * agent renewing its lease at the same moment cannot write the revocation away.
 */
export interface Revocation {
  readonly vm: string;
  readonly host: string;
  readonly instanceId: string;
  readonly epoch: number;
  readonly atMs: number;
}

export function revokes(revocation: Revocation | null, lease: Pick<Lease, 'host' | 'instanceId'>): boolean {
  return revocation !== null && revocation.host === lease.host && revocation.instanceId === lease.instanceId;
}

/**
 * Whether `host` may take the lease now: nobody else holds it, the holder's lease was revoked, or
 * the reader has seen it go unrenewed for a whole lease (`unchangedForMs`, on the reader's own
 * monotonic clock: change-witness.ts). The holder's wall-clock times are never compared with ours.
 */
export function leaseFree(lease: Lease | null, revocation: Revocation | null, host: string, unchangedForMs: number, leaseMs: number): boolean {
  return lease === null || lease.host === host || unchangedForMs >= leaseMs || revokes(revocation, lease);
}

/** What changes with every renewal of a lease (its holder, copy and renewal time). */
export function leaseVersion(lease: Lease | null): string | null {
  return lease === null ? null : `${lease.host}|${lease.instanceId}|${lease.epoch}|${lease.renewedAtMs}`;
}

export interface HeartbeatRecord {
  readonly host: string;
  readonly atMs: number;
  readonly seq: number;
}

export interface FenceRecord {
  readonly host: string;
  readonly epoch: number;
  readonly atMs: number;
}

export interface FenceAck {
  readonly host: string;
  readonly epoch: number;
  readonly atMs: number;
  readonly killed: readonly string[];
}
